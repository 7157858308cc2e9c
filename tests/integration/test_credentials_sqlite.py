"""The credentials cache on SQLite, where nothing can notify: each read first reads the log's
events appended since the last one and forgets the tokens and organizations they change."""

from __future__ import annotations

import threading
from pathlib import Path
from uuid import UUID

import pytest

from scimledger.ledger.application import Ledger
from scimledger.ledger.context import RequestInfo
from scimledger.ledger.credentials import LogReader
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.tokens import Token, format_token
from tests.integration.test_credentials_cache import (  # its fixtures, on SQLite here
    OPERATOR,
    Loads,
    issue,
    now,
    other,
    refused,
    revoke,
    server,
)

__all__ = ["other", "server"]  # the fixtures `server` and `other` read `database` from here


@pytest.fixture
def database(tmp_path: Path) -> DatabaseURL:
    return DatabaseURL.parse(f"sqlite:///{tmp_path}/scimledger.db")


def test_live_a_token_is_read_once_for_three_authentications(
    server: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = issue(server, "acme")
    assert server.credentials.live  # no listener needed
    loads = Loads(server, monkeypatch)
    for _ in range(3):
        assert server.authenticate(issued.token, now()).actor.name == "Okta"
    assert loads.reads == [("Token", issued.id)]


def test_a_token_revoked_by_another_process_is_refused_at_the_next_request(
    server: Ledger, other: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = issue(server, "acme")
    assert server.credentials.live  # no listener needed
    loads = Loads(server, monkeypatch)
    assert refused(server, issued.token) is None
    assert refused(server, issued.token) is None
    assert loads.of(Token, issued.id) == 1  # held in the cache
    revoke(other, issued.id)
    assert refused(server, issued.token) == "token revoked"  # at the next request


def test_an_organization_changed_by_another_process_is_read_again(
    server: Ledger, other: Ledger
) -> None:
    server.add_admin("acme", "alice@example.com", OPERATOR, RequestInfo("a"))
    org_id = server.organization_id("acme")
    assert org_id is not None
    assert server.credentials.live  # no listener needed
    kept = server.credentials.get(org_id, lambda: server.organization("acme"))
    assert server.credentials.get(org_id, lambda: "read again") is kept
    other.remove_admin("acme", "alice@example.com", OPERATOR, RequestInfo("r"))
    assert server.credentials.get(org_id, lambda: "read again") == "read again"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_organizations_id_presented_as_a_token_is_refused(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The cache holds organizations beside tokens, by id; an organization's id is derived
    from its name, so anyone can present it as a token's: refused, never a 500."""
    if kind == "sqlite":
        database = DatabaseURL.parse(f"sqlite:///{tmp_path}/scimledger.db")
    else:
        database = request.getfixturevalue("postgres")
    ledger = Ledger(database)
    try:
        ledger.add_admin("acme", "alice@example.com", OPERATOR, RequestInfo("a"))
        issued = issue(ledger, "acme", by="alice@example.com")
        org_id = ledger.organization_id("acme")
        assert org_id is not None
        ledger.credentials.start()  # live on PostgreSQL too, as with a listener
        assert refused(ledger, issued.token) is None  # the organization is now cached
        forged = format_token(org_id, issued.token.removeprefix("scl_")[33:])
        assert refused(ledger, forged) == "unknown token"
    finally:
        ledger.close()


def test_no_reader_trusts_the_cache_before_a_change_read_is_forgotten(
    server: Ledger, other: Ledger
) -> None:
    """A request that reads a revocation from the log forgets the token before any other
    request may find nothing new and trust the cache: the second check waits for the
    first one's forgetting."""
    issued = issue(server, "acme")
    datastore = getattr(server.recorder, "datastore")  # noqa: B009 (not on its interface)
    reader = LogReader(datastore.pool.open_sqlite, server.events_table)
    reader.check(lambda ids: None)  # reads from the head
    revoke(other, issued.id)
    forgetting = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def slow_forget(ids: list[UUID]) -> None:
        assert ids == [issued.id]
        forgetting.set()
        release.wait(5)
        order.append("forgot")

    first = threading.Thread(target=reader.check, args=(slow_forget,))
    first.start()
    assert forgetting.wait(5)

    def check_again() -> None:
        reader.check(lambda ids: None)
        order.append("2nd")

    second = threading.Thread(target=check_again)
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waits for the first one's forgetting
    release.set()
    first.join(5)
    second.join(5)
    assert order == ["forgot", "2nd"]
    reader.close()
