"""Shared fixtures: a fresh database of each kind per test, the ledger, the HTTP app.

PostgreSQL tests use a real server (never a mock): a new database per test, dropped after.
Where no PostgreSQL is reachable they skip with the reason, except in CI (CI=true), where
they fail instead, so they can never silently stop running.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from scimledger.http.app import bind, create_app
from scimledger.http.services import Services
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import IssuedToken
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.keys import MASTER_KEY_ENV
from scimledger.projections.audit import AuditProjection
from scimledger.projections.inline import InlineScim
from scimledger.projections.registry import all_projections
from scimledger.projections.runner import Runner
from scimledger.projections.scim_projection import ScimProjection
from scimledger.projections.sql import SQL
from scimledger.projections.tokens import TokensProjection, UsageRecorder
from tests.polling import PollingRunner
from tests.reset import Template, put_back
from tests.scim import Client

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ADMIN_URL = os.environ.get(
    "SCIMLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
# The databases of one run (its xdist workers included) share this prefix: the run's last
# step drops whatever of them is left, even after a worker crashed.
RUN = "SCIMLEDGER_TEST_RUN"
TEST_MASTER_KEY = hashlib.sha256(b"scimledger tests' master key").digest()


def skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this must not be skipped)")
    pytest.skip(reason)


def _postgres_available() -> str | None:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.OperationalError as exc:
        return (
            f"PostgreSQL not reachable at {ADMIN_URL} ({exc}); "
            "start it or set SCIMLEDGER_TEST_POSTGRES_URL"
        )


_PG_PROBLEM: list[str | None] = []


def _admin(statement: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=10) as conn:
        conn.execute(statement)


def _prefix() -> str:
    return f"scimledger_test_{os.environ[RUN]}_"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault(RUN, uuid.uuid4().hex[:8])  # set before xdist starts its workers
    # One master key for the run (ledger.keys), in the environment as a deployment has it:
    # the ledgers the tests open, and the servers and commands they start, all read it.
    if MASTER_KEY_ENV not in os.environ:
        path = Path(tempfile.gettempdir()) / f"scimledger-test-{os.environ[RUN]}.master.key"
        if not path.exists():
            written = path.with_suffix(f".{os.getpid()}")
            written.write_text(base64.b64encode(TEST_MASTER_KEY).decode() + "\n")
            written.chmod(0o600)
            written.replace(path)
        os.environ[MASTER_KEY_ENV] = str(path)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The run's last step (the controller's, not a worker's): no database of it is left."""
    if hasattr(session.config, "workerinput") or _postgres_available() is not None:
        return
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=10) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (_prefix(),)
        ).fetchall()
        for (name,) in left:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _url(name: str) -> str:
    admin = DatabaseURL.parse(ADMIN_URL)
    return f"postgresql://{admin.user}@{admin.host}:{admin.port}/{name}"


def new_postgres_database(template: str | None = None) -> str:
    """A new database: empty, or a copy of `template`."""
    if not _PG_PROBLEM:
        _PG_PROBLEM.append(_postgres_available())
    if _PG_PROBLEM[0] is not None:
        skip_or_fail(_PG_PROBLEM[0])
    name = f"{_prefix()}{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return _url(name)


def drop_postgres_database(url: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{DatabaseURL.parse(url).dbname}" WITH (FORCE)')


class LedgerDatabases:
    """PostgreSQL databases that already hold the ledger's tables, for the tests that run on
    both databases: copies of a template set up once per session (creating the tables cost a
    test more than copying them). A used one is put back as the template left it, in the
    background, and taken by a later test: a copy is made only when none is free, and one is
    dropped only when a test changed it beyond what `tests.reset` puts back (creating and
    dropping databases cost more than the tests on them).

    The template holds the read models' tables too, as a server's first start on an empty log
    leaves them (creating them cost a PostgreSQL test ~250 ms of its setup); tests marked
    `no_read_models` get a new copy of a template without them, to see them created or
    missing, dropped after the test."""

    def __init__(self) -> None:
        self._templates: dict[bool, str] = {}  # with the read models' tables or not -> name
        self._template: Template | None = None  # what the one with them holds
        self._free: list[str] = []
        self._lock = threading.Lock()
        self._background = ThreadPoolExecutor(1, "put-back-database")

    def take(self, read_models: bool = True) -> str:
        if not read_models:
            return self._clone(False)
        with self._lock:
            if self._free:
                return self._free.pop()
        return self._clone(True)

    def _clone(self, read_models: bool) -> str:
        if read_models not in self._templates:
            url = new_postgres_database()
            ledger = Ledger(DatabaseURL.parse(url))
            try:
                for projection in all_projections() if read_models else []:
                    Runner(ledger, projection).create_tables()
            finally:
                ledger.close()
            self._templates[read_models] = DatabaseURL.parse(url).dbname
            if read_models:
                self._template = Template.read(url)
        return new_postgres_database(self._templates[read_models])

    def give_back(self, url: str, read_models: bool = True) -> None:
        """`url`'s test is over: put back for the next, or dropped."""
        self._background.submit(self._give_back, url, read_models)

    def _give_back(self, url: str, read_models: bool) -> None:
        name = DatabaseURL.parse(url).dbname
        template = self._template
        if read_models and template is not None and put_back(ADMIN_URL, url, name, template):
            with self._lock:
                self._free.append(url)
            return
        drop_postgres_database(url)

    def close(self) -> None:
        self._background.shutdown()  # waits for every database given back
        for url in self._free:
            drop_postgres_database(url)
        for template in self._templates.values():
            drop_postgres_database(_url(template))


@pytest.fixture(scope="session")
def ledger_databases() -> Iterator[LedgerDatabases]:
    databases = LedgerDatabases()
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def postgres() -> Iterator[DatabaseURL]:
    """A fresh PostgreSQL database alone, empty, for what only PostgreSQL has (LISTEN/NOTIFY,
    advisory locks)."""
    url = new_postgres_database()
    try:
        yield DatabaseURL.parse(url)
    finally:
        drop_postgres_database(url)


def database_kinds(metafunc: pytest.Metafunc) -> list[str]:
    """The databases a test runs on: SQLite and PostgreSQL, but SQLite alone for those
    marked `sqlite_only` (what does not depend on the database: discovery, request limits,
    the envelope)."""
    only = metafunc.definition.get_closest_marker("sqlite_only") is not None
    return ["sqlite"] if only else ["sqlite", "postgresql"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test on a `database_url` (or a `module_database_url`, shared by a module's
    tests: below) runs once on each of its `database_kinds`."""
    chosen = any(
        "database_url" in str(mark.args[0])
        for mark in metafunc.definition.iter_markers("parametrize")
    )  # the test parametrizes it itself
    if "database_url" in metafunc.fixturenames and not chosen:
        metafunc.parametrize("database_url", database_kinds(metafunc), indirect=True)
    if "module_database_url" in metafunc.fixturenames:
        kinds = database_kinds(metafunc)
        metafunc.parametrize("module_database_url", kinds, indirect=True, scope="module")


@contextmanager
def a_database(
    kind: str, directory: Path, databases: LedgerDatabases, read_models: bool = True
) -> Iterator[str]:
    """A database of `kind` holding no event: a file in `directory`, or a PostgreSQL one."""
    if kind == "sqlite":
        yield f"sqlite:///{directory}/scimledger.db"
        return
    url = databases.take(read_models)
    try:
        yield url
    finally:
        databases.give_back(url, read_models)


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, ledger_databases: LedgerDatabases
) -> Iterator[str]:
    """A fresh database holding no event: each test runs once on SQLite and once on
    PostgreSQL (but `sqlite_only` ones)."""
    read_models = request.node.get_closest_marker("no_read_models") is None
    with a_database(request.param, tmp_path, ledger_databases, read_models) as url:
        yield url


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    ledger = Ledger(DatabaseURL.parse(database_url))
    try:
        yield ledger
    finally:
        ledger.close()


@contextmanager
def serving(ledger: Ledger) -> Iterator[Services]:
    """The services of an app on `ledger`, as a server's are (but its followers)."""
    runner = PollingRunner(ledger, ScimProjection())
    runner.start()
    ledger.project_inline(InlineScim(runner))  # as a server's Followers do
    trail = Runner(ledger, AuditProjection())
    trail.run_once()  # no polling thread: readers catch it up before they read
    tokens = Runner(ledger, TokensProjection())
    tokens.run_once()
    try:
        yield Services(
            ledger=ledger,
            scim=runner,
            audit=trail,
            tokens=tokens,
            sql=SQL(ledger),
            usage=UsageRecorder(SQL(ledger)),
        )
    finally:
        runner.stop()


@pytest.fixture
def services(ledger: Ledger) -> Iterator[Services]:
    with serving(ledger) as services:
        yield services


def issue(ledger: Ledger, org: str = "acme", name: str = "Okta") -> IssuedToken:
    return ledger.issue_token(
        org=org,
        name=name,
        expires_at=None,
        actor=Actor(kind="operator", id="tests", name="tester"),
        request=RequestInfo(request_id="test"),
    )


@pytest.fixture
def token(services: Services) -> IssuedToken:
    return issue(services.ledger)


_APP: list[Litestar] = []


def app_for(services: Services) -> Litestar:
    """The real app, serving `services`: one app per test process, bound to each test's
    services in turn (`create_app` costs ~150 ms, as much as the rest of a test's setup)."""
    if not _APP:
        _APP.append(create_app(services))
    else:
        bind(_APP[0], services)
    return _APP[0]


@pytest.fixture
def client(services: Services, token: IssuedToken) -> Iterator[Client]:
    """An HTTP client for the real app, authenticated as organization `acme`."""
    with TestClient(app=app_for(services), base_url="http://scim.test") as test_client:
        test_client.headers["Authorization"] = f"Bearer {token.token}"
        yield test_client


def payload_of(ledger: Ledger, stored: Any) -> bytes:
    """A stored event's payload, uncompressed (ledger.compression)."""
    compressor = ledger.mapper.compressor
    assert compressor is not None
    return compressor.decompress(stored.state)


def stored_payloads(ledger: Ledger) -> list[bytes]:
    """Every event's payload as the log holds it, uncompressed: what a test searches for a
    secret that must not be there."""
    notifications = ledger.recorder.select_notifications(start=1, limit=100_000)
    return [payload_of(ledger, n) for n in notifications]


def all_stored(ledger: Ledger) -> bytes:
    """Every event's uncompressed payload and topic, joined."""
    notifications = ledger.recorder.select_notifications(start=1, limit=100_000)
    return b"".join(
        payload + n.topic.encode()
        for payload, n in zip(stored_payloads(ledger), notifications, strict=True)
    )


# One database per module and kind, for tests that only read: a module's read-only tests
# share one database, ledger, services and client (and the data the module creates in them,
# with module-scoped fixtures of its own) instead of building them for every test. Only
# tests that change nothing anyone can see may use them: a test that writes takes the
# per-test fixtures above.


@pytest.fixture(scope="module")
def module_database_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    ledger_databases: LedgerDatabases,
) -> Iterator[str]:
    """A database holding no event, shared by the module's tests of one kind: each runs
    once on SQLite and once on PostgreSQL (but `sqlite_only` ones)."""
    directory = tmp_path_factory.mktemp("module")
    with a_database(request.param, directory, ledger_databases) as url:
        yield url


@pytest.fixture(scope="module")
def module_ledger(module_database_url: str) -> Iterator[Ledger]:
    ledger = Ledger(DatabaseURL.parse(module_database_url))
    try:
        yield ledger
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def module_services(module_ledger: Ledger) -> Iterator[Services]:
    """As `services`, for the module's tests."""
    with serving(module_ledger) as services:
        yield services


@pytest.fixture(scope="module")
def module_client(module_services: Services) -> Iterator[Client]:
    """As `client`, for the module's tests: one that changes its headers takes `client`."""
    token = issue(module_services.ledger)
    with TestClient(app=create_app(module_services), base_url="http://scim.test") as test_client:
        test_client.headers["Authorization"] = f"Bearer {token.token}"
        yield test_client
