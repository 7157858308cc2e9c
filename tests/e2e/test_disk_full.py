"""A full disk: writes answer 503 with a SCIM error, nothing is corrupted, nothing answered
201 is lost, and writes succeed again once there is room.

The disk is SQLite's own limit on the database's size (PRAGMA max_page_count), set on every
connection the event store opens: to SQLite that is exactly a full disk (SQLITE_FULL,
"database or disk is full").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from scimledger.http.app import create_app
from scimledger.http.services import Services
from scimledger.ledger.application import Ledger
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.sqlite_store import ConnectionPool
from scimledger.projections.audit import AuditProjection
from scimledger.projections.runner import Runner
from scimledger.projections.scim_projection import ScimProjection
from scimledger.projections.sql import SQL
from scimledger.projections.tokens import TokensProjection, UsageRecorder
from tests.conftest import issue
from tests.polling import PollingRunner
from tests.scim import Client


class Disk:
    """Every SQLite connection opened while it is installed, and their size limit."""

    def __init__(self) -> None:
        self.connections: list[sqlite3.Connection] = []
        self.pages: int | None = None

    def limit(self, pages: int | None) -> None:
        self.pages = pages
        for connection in self.connections:
            self._apply(connection)

    def _apply(self, connection: sqlite3.Connection) -> None:
        connection.execute(f"PRAGMA max_page_count = {self.pages or 1_000_000_000}")


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Disk:
    disk = Disk()
    original = ConnectionPool._create_connection

    def create(pool: ConnectionPool) -> Any:
        connection = original(pool)
        disk.connections.append(connection._sqlite_conn)
        if disk.pages is not None:
            disk._apply(connection._sqlite_conn)
        return connection

    monkeypatch.setattr(ConnectionPool, "_create_connection", create)
    return disk


@pytest.fixture
def client(disk: Disk, tmp_path: Path) -> Iterator[Client]:
    ledger = Ledger(DatabaseURL.parse(f"sqlite:///{tmp_path}/full.db"))
    scim = PollingRunner(ledger, ScimProjection())
    scim.start()
    tokens = Runner(ledger, TokensProjection())
    tokens.run_once()
    services = Services(
        ledger=ledger,
        scim=scim,
        audit=Runner(ledger, AuditProjection()),
        tokens=tokens,
        sql=SQL(ledger),
        usage=UsageRecorder(SQL(ledger)),
    )
    token = issue(ledger)
    try:
        with TestClient(app=create_app(services), base_url="http://scim.test") as test_client:
            test_client.headers["Authorization"] = f"Bearer {token.token}"
            yield test_client
    finally:
        scim.stop()
        ledger.close()


def user(n: int) -> dict[str, Any]:
    return {"userName": f"user{n}@example.com", "title": "x" * 2000}


def test_a_full_disk_answers_503_corrupts_nothing_and_recovers(
    client: Client,
    disk: Disk,
    tmp_path: Path,
) -> None:
    assert client.post("/scim/v2/Users", json=user(0)).status_code == 201
    [pages] = sqlite3.connect(tmp_path / "full.db").execute("PRAGMA page_count").fetchone()
    disk.limit(pages + 8)

    created, refused = ["user0@example.com"], []
    for n in range(1, 200):
        response = client.post("/scim/v2/Users", json=user(n))
        if response.status_code == 201:
            created.append(f"user{n}@example.com")
            continue
        refused.append((response.status_code, response.json()))
        if len(refused) == 3:
            break
    assert (
        refused
        == [
            (
                503,
                {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                    "status": "503",
                    "detail": "The database is unavailable or busy; retry later",
                },
            )
        ]
        * 3
    )

    disk.limit(None)
    check = sqlite3.connect(tmp_path / "full.db")
    assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert client.post("/scim/v2/Users", json=user(1000)).status_code == 201
    listed = client.get("/scim/v2/Users", params={"count": 1000}).json()
    names = {item["userName"] for item in listed["Resources"]}
    assert set(created) | {"user1000@example.com"} <= names
    assert len(names) == len(listed["Resources"])
