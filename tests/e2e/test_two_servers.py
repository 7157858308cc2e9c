"""Two server processes on one PostgreSQL database: revocation reaches both within a second."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import drop_postgres_database, new_postgres_database
from tests.e2e.conftest import Server, call, cli, issue_token, start_server

pytestmark = pytest.mark.slow


@pytest.fixture
def two_servers() -> Iterator[tuple[Server, Server]]:
    url = new_postgres_database()
    first = start_server(url)
    second = start_server(url)
    try:
        yield first, second
    finally:
        for server in (first, second):
            if server.process.poll() is None:
                server.stop()
            server.log.close()
        drop_postgres_database(url)


def status(server: Server, token: str) -> int | None:
    return call(server, "GET", "/Users?count=1", token, timeout=10).status


def test_revocation_takes_effect_on_every_server_within_one_second(
    two_servers: tuple[Server, Server],
) -> None:
    first, second = two_servers
    issued = issue_token(first.database)
    assert [status(first, issued["token"]), status(second, issued["token"])] == [200, 200]
    revoked = cli("tokens", "revoke", issued["id"], database=first.database)
    assert revoked.returncode == 0, revoked.stderr
    deadline = time.monotonic() + 1.0
    statuses = [status(first, issued["token"]), status(second, issued["token"])]
    assert time.monotonic() <= deadline
    assert statuses == [401, 401]


def test_a_user_created_on_one_server_is_read_on_the_other(
    two_servers: tuple[Server, Server],
) -> None:
    first, second = two_servers
    token = issue_token(first.database)["token"]
    created = call(first, "POST", "/Users", token, {"userName": "shared@example.com"}, timeout=10)
    assert created.status == 201
    # The second server's read model follows by polling: within its 0.2 s interval.
    path = "/Users?filter=userName%20eq%20%22shared@example.com%22"
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        found = call(second, "GET", path, token, timeout=10)
        assert found.status == 200, found
        if found.body["totalResults"] == 1:
            return
        time.sleep(0.05)
    raise AssertionError("the second server never saw the user")
