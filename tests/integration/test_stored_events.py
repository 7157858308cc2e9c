"""Stored events are a permanent schema: events of every released shape still load.

`tests/fixtures/events_v1.json` holds the events of a scenario exactly as version 1 stored
them (topic and payload). Never edit it; add a new fixture file when a shape changes.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from freezegun import freeze_time

from scimledger.ledger import sqlite_store
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewUser
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.groups import Group
from scimledger.ledger.organizations import Organization
from scimledger.ledger.tokens import Token
from scimledger.ledger.users import User
from scimledger.projections import scim
from scimledger.projections.scim_projection import ScimProjection
from scimledger.projections.sql import SQL
from tests.polling import PollingRunner

FIXTURE = Path(__file__).parents[1] / "fixtures" / "events_v1.json"


def load_fixture(ledger: Ledger, fixture: Path = FIXTURE) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(fixture.read_text())
    ledger.recorder.insert_events(
        [
            StoredEvent(
                originator_id=UUID(r["originator_id"]),
                originator_version=r["originator_version"],
                topic=r["topic"],
                state=r["state"].encode(),
            )
            for r in records
        ]
    )
    return records


def fixture_ids(topic_suffix: str) -> list[UUID]:
    records = json.loads(FIXTURE.read_text())
    return [UUID(r["originator_id"]) for r in records if r["topic"].endswith(topic_suffix)]


def test_version_1_events_replay_to_the_same_user(ledger: Ledger) -> None:
    load_fixture(ledger)
    [user_id, _deleted_id] = fixture_ids("User.UserCreated")
    user: Aggregate = ledger.repository.get(user_id)
    assert isinstance(user, User)
    assert user.attributes == {
        "userName": "barbara@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
        "externalId": "00u1",
        "title": "CEO",
    }
    assert user.active is True
    assert user.version == 6
    assert user.password_hash is not None
    assert user.password_hash.startswith("scrypt$")
    assert user.modified_on == datetime(2026, 11, 29, 10, tzinfo=UTC)


def test_version_1_events_replay_to_the_same_token(ledger: Ledger) -> None:
    load_fixture(ledger)
    [token_id] = fixture_ids("Token.TokenIssued")
    token: Aggregate = ledger.repository.get(token_id)
    assert isinstance(token, Token)
    assert (token.name, token.org_slug, token.revoked) == ("Okta", "acme", True)
    assert token.expires_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert token.issued_by == Actor(kind="operator", id="scimledger tokens issue", name="admin")


def test_version_1_events_project_to_the_same_read_model(ledger: Ledger) -> None:
    load_fixture(ledger)
    runner = PollingRunner(ledger, ScimProjection())
    runner.start()
    runner.stop()
    [user_id, deleted_id] = fixture_ids("User.UserCreated")
    org_id = ledger.organization_id("acme")
    assert org_id is not None
    with SQL(ledger).transaction(commit=False) as cursor:
        row = scim.get_user(cursor, org_id, str(user_id))
        assert scim.get_user(cursor, org_id, str(deleted_id)) is None
    assert row is not None
    assert (row.active, row.version, row.created) == (True, 6, "2026-11-29T10:00:00.000Z")
    assert row.attributes["userName"] == "barbara@example.com"


def test_events_recorded_under_a_frozen_clock_are_stored_and_read(ledger: Ledger) -> None:
    with freeze_time("2030-01-02T03:04:05Z"):
        issued = ledger.issue_token(
            org="acme",
            name="Okta",
            expires_at=None,
            actor=Actor(kind="operator", id="tests", name="t"),
            request=RequestInfo(request_id="r"),
        )
        org_id = ledger.organization_id("acme")
        assert org_id is not None
        context = CommandContext(
            org_id, Actor(kind="token", id=str(issued.id), name="Okta"), RequestInfo(request_id="r")
        )
        written = ledger.create_user(context, NewUser(attributes={"userName": "frozen"}))
    user: Aggregate = ledger.repository.get(written.id)
    assert isinstance(user, User)
    assert user.created_on == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


ORGANIZATION_FIXTURE = Path(__file__).parents[1] / "fixtures" / "events_v2_organization.json"


def test_admins_added_before_roles_existed_load_as_admins(ledger: Ledger) -> None:
    """`events_v2_organization.json`: an organization's events as stored before reviewers
    (issue 17) gave AdminAdded its `role`: ada added, bob added then removed."""
    records = load_fixture(ledger, ORGANIZATION_FIXTURE)
    assert all('"role"' not in r["state"] for r in records)
    organization: Organization = ledger.repository.get(UUID(records[0]["originator_id"]))
    assert (organization.admins, organization.reviewers) == (["ada@acme.example"], [])
    assert organization.role_of("ada@acme.example") == "admin"
    assert organization.role_of("bob@acme.example") is None


def test_sqlite_connections_keep_their_prepared_statements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library opens them with `cached_statements=True`, a cache of one statement: every
    other statement was compiled again at each use."""
    opened: list[Any] = []
    connect = sqlite3.connect

    def recording(*args: Any, **kwargs: Any) -> Any:
        opened.append(kwargs.get("cached_statements"))
        return connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", recording)
    ledger = Ledger(DatabaseURL.parse(f"sqlite:///{tmp_path}/scimledger.db"))
    try:
        ledger.issue_token(
            org="acme",
            name="Okta",
            expires_at=None,
            actor=Actor.operator("tests"),
            request=RequestInfo.local(),
        )
    finally:
        ledger.close()
    assert opened
    assert set(opened) == {sqlite_store.STATEMENT_CACHE}


EXTENSIONS_FIXTURE = Path(__file__).parents[1] / "fixtures" / "events_v3_extensions.json"


def test_declared_extensions_and_group_values_as_first_stored_replay_the_same(
    ledger: Ledger,
) -> None:
    """`events_v3_extensions.json` (issue 22): acme declares a user extension (one attribute
    unique) and a group one, a group gets values then others, the user extension is removed."""
    records = load_fixture(ledger, EXTENSIONS_FIXTURE)
    group_urn = "urn:ietf:params:scim:schemas:extension:acme:2.0:Group"
    organization: Organization = ledger.repository.get(UUID(records[0]["originator_id"]))
    [group_record] = [r for r in records if r["topic"].endswith("Group.GroupCreated")]
    group: Group = ledger.repository.get(UUID(group_record["originator_id"]))

    assert list(organization.extensions) == [group_urn]
    declared = organization.declared()
    assert declared.user.declared == ()
    [extension] = declared.group.extensions
    assert [a.name for a in extension.schema.attributes] == ["site", "budget"]
    assert extension.schema.attribute("budget") is not None
    assert (group.display_name, group.extensions) == ("Platform", {group_urn: {"site": "Zürich"}})
