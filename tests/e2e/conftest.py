"""The real server process, as tests start it: `scimledger serve` on a free port."""

from __future__ import annotations

import http.client
import io
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import IO, Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from scimledger.http.services import Services
from scimledger.ledger.application import Ledger
from scimledger.ledger.context import RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.users import User
from scimledger.scripts.cli import main
from tests.conftest import SHARED, LedgerDatabases, a_database, app_for, database_kinds
from tests.e2e.console import ADA, OPERATOR, RITA
from tests.e2e.oidc_provider import Provider, running_provider
from tests.e2e.private_postgres import PrivatePostgres

SCIMLEDGER = str(Path(sys.executable).parent / "scimledger")
OKTA = SHARED / "conformance" / "okta"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli(*args: str, database: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCIMLEDGER, *args, "--database", database],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def cli_in_process(*args: str, database: str) -> subprocess.CompletedProcess[str]:
    """As `cli`, but the command's `main` run in this process, its stdout and stderr captured:
    for the tests of what a command prints, where a process (~1 s each) adds nothing. A test
    about the process itself (its exit, its signals, its environment) takes `cli`."""
    return main_in_process(*args, "--database", database)


def main_in_process(*argv: str) -> subprocess.CompletedProcess[str]:
    """`scimledger *argv` as `cli_in_process` runs it, for a command without `--database`
    (`ledger copy --from --to`)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code: object = main(argv)
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
    returncode = code if isinstance(code, int) else 0 if code is None else 1
    return subprocess.CompletedProcess(
        [SCIMLEDGER, *argv], returncode, out.getvalue(), err.getvalue()
    )


@dataclass
class Server:
    process: subprocess.Popen[str]
    base_url: str
    database: str
    log: IO[str]  # the server's output: a file, so a long run can never block on a pipe

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=20)


@dataclass(frozen=True)
class Reply:
    """A server's answer to one request, as `call` got it."""

    status: int | None  # None: no HTTP answer at all (refused, reset, timed out)
    body: Any  # the decoded JSON, None if empty
    headers: Message | None
    seconds: float  # how long the answer took
    sent_at: float  # time.monotonic() when the request was sent
    refused: bool = False  # no answer because the connection was refused: no server took it

    def header(self, name: str) -> str | None:
        return None if self.headers is None else self.headers.get(name)


def call(
    server: Server,
    method: str,
    path: str,
    token: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    """One request to a running server as the holder of `token`; `path` is under /scim/v2."""
    request = urllib.request.Request(
        server.base_url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/scim+json",
            **(headers or {}),
        },
    )
    sent_at = time.monotonic()
    try:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, answered, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            # Its body is read here too: a server killed after an error's headers cuts it.
            status, answered, raw = error.code, error.headers, error.read()
    except urllib.error.URLError as error:
        refused = isinstance(error.reason, ConnectionRefusedError)
        return Reply(None, None, None, time.monotonic() - sent_at, sent_at, refused)
    except (OSError, http.client.HTTPException):  # reset, closed mid-answer, timed out
        return Reply(None, None, None, time.monotonic() - sent_at, sent_at)
    seconds = time.monotonic() - sent_at
    return Reply(status, json.loads(raw) if raw else None, answered, seconds, sent_at)


def start_server(database: str, *options: str) -> Server:
    """`scimledger serve` on a free port, with any further `options`; waits until it serves.
    A port found free can be taken by another test's process before the server binds it
    (tests run in parallel): then it starts again on another."""
    for attempt in range(3):
        try:
            return _start_server(database, *options)
        except PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class PortTaken(AssertionError):
    """The server exited at once: its port was taken meanwhile."""


def _start_server(database: str, *options: str) -> Server:
    port = free_port()
    log = tempfile.TemporaryFile("a+")  # noqa: SIM115 (appended to: see test_project_process)
    process = subprocess.Popen(
        [SCIMLEDGER, "serve", "--port", str(port), "--database", database, *options],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Server(process, f"http://127.0.0.1:{port}/scim/v2", database, log)
    deadline = time.monotonic() + 60  # a start takes ~2 s; a loaded CI run has seen 30 s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = running.output()
            log.close()
            if "address already in use" in output:
                raise PortTaken(f"port {port} taken:\n{output}")
            raise AssertionError(f"server exited early:\n{output}")
        try:
            with urllib.request.urlopen(f"{running.base_url}/ServiceProviderConfig", timeout=1):
                return running
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"server did not start within 60 s:\n{running.output()}")


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """The servers a test starts; killed, if still running, at its end."""
    started: list[Server] = []
    try:
        yield started
    finally:
        for running in started:
            if running.process.poll() is None:
                running.process.kill()
                running.process.wait(timeout=10)
            running.log.close()


@contextmanager
def running_server(database: str, *options: str) -> Iterator[Server]:
    """`start_server`, stopped (if still running) and its log closed at the end."""
    running = start_server(database, *options)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.stop()
        running.log.close()


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    with running_server(database_url) as running:
        yield running


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test on `shared_server` runs once on SQLite and once on PostgreSQL (but those marked
    `sqlite_only`), as one on `database_url` does."""
    if "shared_server" in metafunc.fixturenames:
        kinds = database_kinds(metafunc)
        metafunc.parametrize("shared_server", kinds, indirect=True, scope="module")


@pytest.fixture(scope="module")
def shared_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    ledger_databases: LedgerDatabases,
) -> Iterator[Server]:
    """One server per module (per xdist worker) and database kind, for the tests that only
    send it requests, each in an organization of its own (`org`): starting a server per test
    cost CI time. A test that stops the server, reads its log or needs a database holding
    nothing but its own effects takes `server` instead."""
    directory = tmp_path_factory.mktemp("shared")
    with (
        a_database(request.param, directory, ledger_databases) as url,
        running_server(url) as running,
    ):
        yield running


@pytest.fixture
def org() -> str:
    """An organization of the test's own (`acme-` and a random suffix), on a shared server."""
    return f"acme-{uuid.uuid4().hex[:12]}"


def issue_token(database: str, org: str = "acme") -> dict[str, Any]:
    """`scimledger tokens issue --json` (in this process: `cli_in_process`), decoded."""
    argv = ["tokens", "issue", "--org", org, "--name", "Okta", "--expires", "never", "--json"]
    result = cli_in_process(*argv, database=database)
    assert result.returncode == 0, result.stderr
    issued: dict[str, Any] = json.loads(result.stdout)
    return issued


def listed_users(server: Server, token: str) -> list[dict[str, Any]]:
    """Every user the server lists, page by page."""
    users: list[dict[str, Any]] = []
    while True:
        page = call(server, "GET", f"/Users?startIndex={len(users) + 1}&count=200", token)
        assert page.status == 200, page
        users += page.body["Resources"]
        if not page.body["Resources"] or len(users) >= page.body["totalResults"]:
            return users


def logged_users(database: str) -> dict[str, str]:
    """userName -> id of every user the event log of `database` holds (each created once)."""
    ledger = Ledger(DatabaseURL.parse(database))
    try:
        users: dict[str, str] = {}
        for notification in ledger.recorder.select_notifications(start=1, limit=1_000_000):
            event = ledger.mapper.to_domain_event(notification)
            if isinstance(event, User.UserCreated):
                name = str(event.attributes["userName"])
                assert name not in users, f"{name} created twice"
                users[name] = str(event.originator_id)
        return users
    finally:
        ledger.close()


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of the test's own, running (tests/e2e/private_postgres.py)."""
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def console(services: Services) -> Iterator[TestClient[Litestar]]:
    """A browser's client of the console (no bearer token), with acme's admin ada and
    reviewer rita (tests/e2e/console.py)."""
    services.ledger.add_admin("acme", ADA, OPERATOR, RequestInfo.local())
    services.ledger.add_admin("acme", RITA, OPERATOR, RequestInfo.local(), role="reviewer")
    with TestClient(app=app_for(services), base_url="http://scim.test") as client:
        yield client


@pytest.fixture(scope="module")
def oidc_provider() -> Iterator[Provider]:
    """A real OpenID Connect provider process (tests/e2e/oidc_provider.py), one per module
    (and xdist worker): a test sets the claims of each person it signs in (`person`) before
    signing them in, and the provider keeps nothing else between sign-ins."""
    with running_provider() as provider:
        yield provider
