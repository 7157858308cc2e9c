"""Shared fixtures: a fresh database of each kind per test, the ledger, the HTTP app.

PostgreSQL tests use a real server (never a mock): a new database per test, dropped after.
Where no PostgreSQL is reachable they skip with the reason, except in CI (CI=true), where
they fail instead, so they can never silently stop running.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient

from scimledger.http.app import create_app
from scimledger.http.services import Services
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import IssuedToken
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.projections.audit import AuditProjection
from scimledger.projections.runner import Runner
from scimledger.projections.scim_projection import ScimProjection
from scimledger.projections.sql import SQL
from scimledger.projections.tokens import TokensProjection, UsageRecorder
from tests.polling import PollingRunner

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ADMIN_URL = os.environ.get(
    "SCIMLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


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


def new_postgres_database() -> str:
    if not _PG_PROBLEM:
        _PG_PROBLEM.append(_postgres_available())
    if _PG_PROBLEM[0] is not None:
        skip_or_fail(_PG_PROBLEM[0])
    name = f"scimledger_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    admin = DatabaseURL.parse(ADMIN_URL)
    return f"postgresql://{admin.user}@{admin.host}:{admin.port}/{name}"


def drop_postgres_database(url: str) -> None:
    name = DatabaseURL.parse(url).dbname
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres() -> Iterator[DatabaseURL]:
    """A fresh PostgreSQL database alone, for what only PostgreSQL has (LISTEN/NOTIFY,
    advisory locks)."""
    url = new_postgres_database()
    try:
        yield DatabaseURL.parse(url)
    finally:
        drop_postgres_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: each test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/scimledger.db"
        return
    url = new_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    ledger = Ledger(DatabaseURL.parse(database_url))
    try:
        yield ledger
    finally:
        ledger.close()


@pytest.fixture
def services(ledger: Ledger) -> Iterator[Services]:
    runner = PollingRunner(ledger, ScimProjection())
    runner.start()
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


@pytest.fixture
def client(services: Services, token: IssuedToken) -> Iterator[TestClient]:  # type: ignore[type-arg]
    """An HTTP client for the real app, authenticated as organization `acme`."""
    with TestClient(app=create_app(services), base_url="http://scim.test") as test_client:
        test_client.headers["Authorization"] = f"Bearer {token.token}"
        yield test_client
