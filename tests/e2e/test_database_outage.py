"""PostgreSQL goes away under a running server, then comes back: meanwhile every request
answers 503 with a SCIM error and Retry-After, quickly, and nothing is half-written; after,
the same server serves again by itself, without a restart.

The outage is a TCP proxy between the server and PostgreSQL that the test cuts (every open
connection is closed, new ones are closed as soon as they arrive) and restores: the shared
PostgreSQL server of the test run itself is never stopped.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from scimledger.ledger.database import DatabaseURL
from tests.conftest import ADMIN_URL
from tests.e2e.conftest import call, issue_token, start_server


class Proxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; `cut()` makes the database unreachable."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.up = True
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self.lock:
                if not self.up:
                    client.close()
                    continue
                try:
                    server = socket.create_connection(self.upstream, timeout=5)
                except OSError:
                    client.close()
                    continue
                self.open |= {client, server}
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self.lock:
            self.up = False
            for end in self.open:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
            self.open.clear()

    def restore(self) -> None:
        with self.lock:
            self.up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def proxied(postgres: DatabaseURL) -> Iterator[tuple[Proxy, str]]:
    """A proxy to a fresh database, and that database's URL through the proxy."""
    proxy = Proxy((postgres.host, postgres.port))
    parts = urlsplit(postgres.url)
    through = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    try:
        yield proxy, through
    finally:
        proxy.close()


TIMEOUT = 60.0  # seconds, for any one request: well beyond the 15 s an answer may take


def user(name: str) -> dict[str, Any]:
    return {"userName": name, "name": {"givenName": "Out", "familyName": "Age"}}


def test_requests_answer_503_while_the_database_is_down_and_the_server_recovers(
    postgres: DatabaseURL, proxied: tuple[Proxy, str]
) -> None:
    proxy, through = proxied
    token = issue_token(postgres.url)["token"]  # straight to the database
    server = start_server(through)
    try:
        created = call(server, "POST", "/Users", token, user("before@example.com"), timeout=TIMEOUT)
        assert created.status == 201
        before = created.body

        proxy.cut()
        outage = [
            ("GET", f"/Users/{before['id']}", None),
            ("GET", '/Users?filter=userName eq "before@example.com"'.replace(" ", "%20"), None),
            ("POST", "/Users", user("during@example.com")),
            (
                "PATCH",
                f"/Users/{before['id']}",
                {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "value": {"active": False}}],
                },
            ),
        ]
        for method, path, body in outage:
            reply = call(server, method, path, token, body, timeout=TIMEOUT)
            error, seconds = reply.body, reply.seconds
            assert (method, path, reply.status) == (method, path, 503), error
            assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
            assert error["status"] == "503"
            assert "database" in error["detail"].lower()
            assert int(reply.header("Retry-After") or 0) >= 1
            assert seconds < 15, f"{method} {path}: {seconds:.1f} s to answer\n{server.output()}"

        proxy.restore()
        deadline = time.monotonic() + 30
        while True:
            got = call(server, "GET", f"/Users/{before['id']}", token, timeout=TIMEOUT)
            if got.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        # The PATCH during the outage: not applied.
        assert (got.status, got.body["active"]) == (200, True)
        after = call(server, "POST", "/Users", token, user("after@example.com"), timeout=TIMEOUT)
        assert after.status == 201
        listed = call(server, "GET", "/Users?count=100", token, timeout=TIMEOUT).body
        assert sorted(item["userName"] for item in listed["Resources"]) == [
            "after@example.com",
            "before@example.com",
        ]
        assert server.process.poll() is None  # the same process throughout
    finally:
        server.stop()
        server.log.close()


def test_a_read_only_database_refuses_writes_with_503_and_serves_reads(
    postgres: DatabaseURL,
) -> None:
    token = issue_token(postgres.url)["token"]
    server = start_server(postgres.url)
    admin = psycopg.connect(ADMIN_URL, autocommit=True)

    def set_read_only(on: bool) -> None:
        # New sessions only: the server's connections are ended so that it makes new ones.
        setting = "SET default_transaction_read_only = on" if on else "RESET ALL"
        admin.execute(f'ALTER DATABASE "{postgres.dbname}" {setting}')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (postgres.dbname,),
        )

    def until(expected: int, method: str, path: str, body: Any = None) -> list[int | None]:
        """Statuses answered, until `expected` (at most 20 s)."""
        seen: list[int | None] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            seen.append(call(server, method, path, token, body, timeout=TIMEOUT).status)
            if seen[-1] == expected:
                break
            time.sleep(0.1)
        return seen

    try:
        created = call(server, "POST", "/Users", token, user("before@example.com"), timeout=TIMEOUT)
        assert created.status == 201
        before = created.body
        set_read_only(True)
        assert set(until(200, "GET", f"/Users/{before['id']}")) <= {200, 503}
        for n in range(3):
            refused = call(
                server, "POST", "/Users", token, user(f"ro{n}@example.com"), timeout=TIMEOUT
            )
            assert (refused.status, refused.body["detail"]) == (
                503,
                "The database is unavailable or busy; retry later",
            )
        set_read_only(False)
        answers = until(201, "POST", "/Users", user("after@example.com"))
        assert set(answers) <= {201, 503}, answers
        assert answers[-1] == 201, (answers, server.output())
        listed = call(server, "GET", "/Users?count=100", token, timeout=TIMEOUT).body
        assert sorted(item["userName"] for item in listed["Resources"]) == [
            "after@example.com",
            "before@example.com",
        ]
        assert "internal error" not in server.output()
    finally:
        set_read_only(False)
        admin.close()
        server.stop()
        server.log.close()
