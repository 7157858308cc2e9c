"""The audit trail's projection (projections.audit.AuditProjection) fed events directly:
events made by the aggregates, applied through the projection protocol on an in-memory
SQLite database, and the exact entries they leave. No ledger, no event store."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest

from scimledger.ledger.context import Actor, CommandContext
from scimledger.ledger.groups import Group
from scimledger.ledger.names import NameIndex
from scimledger.ledger.organizations import Organization
from scimledger.ledger.sealing import ERASED
from scimledger.ledger.sessions import ConsoleSession, SignInLink
from scimledger.ledger.tokens import Token
from scimledger.ledger.users import User
from scimledger.ledger.webhooks import Webhook
from scimledger.projections.audit import AuditProjection, flattened, stored_changes
from scimledger.projections.sql import Cursor
from tests.unit.events import (
    CONTEXT,
    OKTA_REQUEST,
    OPERATOR,
    ORG_ID,
    T0,
    at,
    clock,
    database,
    feed,
    rows,
)

ORG = str(ORG_ID)
ADA = "ada@acme.example"
GRACE = T0.replace(year=2031)


@pytest.fixture
def projection() -> AuditProjection:
    return AuditProjection()


@pytest.fixture
def cursor(projection: AuditProjection) -> Cursor:
    return database(projection)


def entries(cursor: Cursor) -> list[dict[str, Any]]:
    """Every entry in log order, its changes decoded (as the trail's readers read them)."""
    found = rows(cursor, "SELECT * FROM audit_entries ORDER BY position")
    return [
        {
            **row,
            "changes": json.loads(stored_changes(row["changes"], row["data"])),
            "data": json.loads(row["data"]) if row["data"] is not None else None,
        }
        for row in found
    ]


def what(cursor: Cursor) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """Each entry's action, subject type and name, and changes."""
    return [
        (row["action"], row["subject_type"], row["subject_name"], row["changes"])
        for row in entries(cursor)
    ]


def subjects(cursor: Cursor) -> dict[str, Any]:
    """The trail's memory of each subject but users and groups (their latest entries')."""
    found = rows(cursor, "SELECT * FROM audit_subjects")
    return {row["subject_id"]: json.loads(row["state"]) for row in found}


def change(before: Any, after: Any) -> dict[str, Any]:
    return {"before": before, "after": after}


def new_user(active: bool = True) -> User:
    attributes = {"userName": "Ada@acme.example", "title": "Countess"}
    return User(org_id=ORG_ID, attributes=attributes, active=active, context=CONTEXT)


def new_token() -> Token:
    return Token(
        org_id=ORG_ID,
        org_slug="acme",
        name="Okta",
        secret_hash="0" * 64,
        expires_at=T0.replace(year=2031),
        scopes=["scim"],
        context=OPERATOR,
        issued_by_admin=ADA,
    )


def test_it_records_every_event_but_the_name_indexes() -> None:
    assert set(AuditProjection().topics) == {
        Organization.OrganizationCreated,
        Organization.AdminAdded,
        Organization.AdminRemoved,
        Organization.AdminDeparted,
        Organization.AdminReturned,
        Organization.SettingsChanged,
        Organization.SchemaDeclared,
        Organization.SchemaRemoved,
        Token.TokenIssued,
        Token.TokenRevoked,
        Token.TokenRotated,
        User.UserCreated,
        User.ProfileUpdated,
        User.UserDeactivated,
        User.UserReactivated,
        User.PasswordChanged,
        User.UserDeleted,
        User.UserErased,
        Group.GroupCreated,
        Group.GroupRenamed,
        Group.GroupExternalIdChanged,
        Group.MembersAdded,
        Group.MembersRemoved,
        Group.GroupDeleted,
        Group.ExtensionsChanged,
        SignInLink.Issued,
        SignInLink.Used,
        ConsoleSession.Started,
        ConsoleSession.Ended,
        Webhook.Added,
        Webhook.Disabled,
        Webhook.Enabled,
        Webhook.Removed,
        Webhook.SecretRotated,
        Webhook.Replayed,
        Webhook.Failing,
    }


def test_an_entry_says_who_did_what_to_what_when_and_through_which_request(
    projection: AuditProjection, cursor: Cursor
) -> None:
    with clock():
        user = new_user()
    feed(projection, cursor, user.collect_events(), first=7)
    assert entries(cursor) == [
        {
            "position": 7,
            "org_id": ORG,
            "occurred_at": "2030-01-01T12:00:00.000Z",
            "actor_kind": "token",
            "actor_id": "6c1d2b7e9f004c3a8e5f1a2b3c4d5e6f",
            "actor_name": "Okta",
            "actor_issuer": ADA,
            "action": "user.created",
            "subject_type": "User",
            "subject_id": str(user.id),
            "subject_name": "Ada@acme.example",
            "subject_name_norm": "ada@acme.example",
            "changes": {
                "userName": change(None, "Ada@acme.example"),
                "title": change(None, "Countess"),
                "active": change(None, True),
            },
            "request_id": "req-1",
            "client_address": "203.0.113.7",
            "user_agent": "Okta SCIM Client 1.0.0",
            # The user as it stands after the change (the events feed's).
            "data": {
                "attributes": {"userName": "Ada@acme.example", "title": "Countess"},
                "active": True,
                "created": "2030-01-01T12:00:00.000Z",
                "version": 1,
            },
        }
    ]


def test_an_operator_entry_has_no_issuer_client_or_user_agent(
    projection: AuditProjection, cursor: Cursor
) -> None:
    feed(projection, cursor, Organization(slug="acme", context=OPERATOR).collect_events())
    [entry] = entries(cursor)
    columns = ("actor_kind", "actor_id", "actor_name", "actor_issuer", "request_id")
    assert [entry[column] for column in columns] == [
        "operator",
        "tokens issue",
        "root",
        None,
        "op-1",
    ]
    assert (entry["client_address"], entry["user_agent"]) == (None, None)


def test_a_created_user_is_remembered_by_its_entry_alone(
    projection: AuditProjection, cursor: Cursor
) -> None:
    with clock():
        user = new_user(active=False)
    feed(projection, cursor, user.collect_events())
    # Its state is its latest entry's data, and its changes are read from there too: the
    # values are stored once.
    [row] = rows(cursor, "SELECT changes, data FROM audit_entries")
    assert row["changes"] is None
    assert json.loads(row["data"]) == {
        "attributes": {"userName": "Ada@acme.example", "title": "Countess"},
        "active": False,
        "created": "2030-01-01T12:00:00.000Z",
        "version": 1,
    }
    assert subjects(cursor) == {}
    # And the next batch's before-values come from it.
    user.set_active(True, CONTEXT)
    user.replace_attributes({"userName": "Ada@acme.example"}, CONTEXT)
    feed(projection, cursor, user.collect_events(), first=2)
    assert what(cursor) == [
        (
            "user.created",
            "User",
            "Ada@acme.example",
            {
                "userName": change(None, "Ada@acme.example"),
                "title": change(None, "Countess"),
                "active": change(None, False),
            },
        ),
        ("user.reactivated", "User", "Ada@acme.example", {"active": change(False, True)}),
        ("user.updated", "User", "Ada@acme.example", {"title": change("Countess", None)}),
    ]


def test_a_deleted_user_is_named_from_its_last_entry_and_erased_everywhere(
    projection: AuditProjection, cursor: Cursor
) -> None:
    user = new_user()
    user.replace_attributes({"userName": "ada.king@acme.example"}, CONTEXT)
    feed(projection, cursor, user.collect_events())
    user.delete(CONTEXT)
    feed(projection, cursor, user.collect_events(), first=3)
    assert what(cursor)[2] == ("user.deleted", "User", "ada.king@acme.example", {})
    user.erase("a person's request", CONTEXT)
    feed(projection, cursor, user.collect_events(), first=4)
    assert [(action, name) for action, _, name, _ in what(cursor)] == [
        ("user.created", ERASED),
        ("user.updated", ERASED),
        ("user.deleted", ERASED),
        ("user.erased", ERASED),
    ]
    # The erasure wrote the creation's changes out, every value erased, and dropped its data.
    [created] = rows(cursor, "SELECT changes, data FROM audit_entries WHERE position = 1")
    assert json.loads(created["changes"]) == {
        "userName": change(None, ERASED),
        "title": change(None, ERASED),
        "active": change(None, True),
    }
    assert created["data"] is None


def test_a_profile_update_shows_each_changed_attributes_before_and_after(
    projection: AuditProjection, cursor: Cursor
) -> None:
    user = new_user()
    feed(projection, cursor, user.collect_events())
    user.replace_attributes({"userName": "ada.king@acme.example", "nickName": "Ada"}, CONTEXT)
    feed(projection, cursor, user.collect_events(), first=2)
    assert what(cursor)[1:] == [
        (
            "user.updated",
            "User",
            "ada.king@acme.example",
            {
                "userName": change("Ada@acme.example", "ada.king@acme.example"),
                "nickName": change(None, "Ada"),
                "title": change("Countess", None),
            },
        )
    ]
    assert entries(cursor)[1]["data"]["attributes"] == {
        "userName": "ada.king@acme.example",
        "nickName": "Ada",
    }


def test_deactivation_and_reactivation_show_active_before_and_after(
    projection: AuditProjection, cursor: Cursor
) -> None:
    user = new_user()
    user.set_active(False, CONTEXT)
    user.set_active(True, CONTEXT)
    feed(projection, cursor, user.collect_events())
    assert what(cursor)[1:] == [
        ("user.deactivated", "User", "Ada@acme.example", {"active": change(True, False)}),
        ("user.reactivated", "User", "Ada@acme.example", {"active": change(False, True)}),
    ]


def test_a_password_change_says_changed_and_never_the_hash(
    projection: AuditProjection, cursor: Cursor
) -> None:
    user = new_user()
    user.set_password_hash("scrypt$the-hash", CONTEXT)
    feed(projection, cursor, user.collect_events())
    assert what(cursor)[1:] == [
        ("user.password_changed", "User", "Ada@acme.example", {"password": "changed"})
    ]
    assert "the-hash" not in json.dumps([entries(cursor), subjects(cursor)])


def test_a_deleted_user_is_named_as_it_was(projection: AuditProjection, cursor: Cursor) -> None:
    user = new_user()
    feed(projection, cursor, user.collect_events())
    user.delete(CONTEXT)
    feed(projection, cursor, user.collect_events(), first=2)
    assert what(cursor)[1:] == [("user.deleted", "User", "Ada@acme.example", {})]


def test_a_created_group_shows_its_name_and_external_id(
    projection: AuditProjection, cursor: Cursor
) -> None:
    with_id = Group(org_id=ORG_ID, display_name="Admins", external_id="g-1", context=CONTEXT)
    without = Group(org_id=ORG_ID, display_name="Staff", external_id=None, context=CONTEXT)
    feed(projection, cursor, [*with_id.collect_events(), *without.collect_events()])
    assert what(cursor) == [
        (
            "group.created",
            "Group",
            "Admins",
            {"displayName": change(None, "Admins"), "externalId": change(None, "g-1")},
        ),
        ("group.created", "Group", "Staff", {"displayName": change(None, "Staff")}),
    ]


def test_group_changes_show_before_and_after_and_name_the_group(
    projection: AuditProjection, cursor: Cursor
) -> None:
    group = Group(org_id=ORG_ID, display_name="Admins", external_id="g-1", context=CONTEXT)
    feed(projection, cursor, group.collect_events())
    alice, bob = UUID(int=1), UUID(int=2)
    group.rename("Ops", CONTEXT)
    group.set_external_id("g-2", CONTEXT)
    group.add_members([bob, alice], CONTEXT)
    group.remove_members([alice], CONTEXT)
    group.delete(CONTEXT)
    feed(projection, cursor, group.collect_events(), first=2)
    assert what(cursor)[1:] == [
        ("group.renamed", "Group", "Ops", {"displayName": change("Admins", "Ops")}),
        ("group.external_id_changed", "Group", "Ops", {"externalId": change("g-1", "g-2")}),
        ("group.members_added", "Group", "Ops", {"members": {"added": [str(alice), str(bob)]}}),
        ("group.members_removed", "Group", "Ops", {"members": {"removed": [str(alice)]}}),
        ("group.deleted", "Group", "Ops", {}),
    ]


def test_an_organizations_creation_and_admins_are_recorded(
    projection: AuditProjection, cursor: Cursor
) -> None:
    organization = Organization(slug="acme", context=OPERATOR)
    organization.add_admin(ADA, OPERATOR)
    organization.user_left({ADA}, CONTEXT, now=at(10))
    organization.user_returned({ADA}, CONTEXT)
    organization.remove_admin(ADA, OPERATOR, now=at(20))
    feed(projection, cursor, organization.collect_events())
    assert what(cursor) == [
        ("organization.created", "Organization", "acme", {"slug": change(None, "acme")}),
        ("admin.added", "Organization", None, {"admins": {"added": [ADA]}, "role": "admin"}),
        ("admin.departed", "Organization", None, {"admins": {"departed": [ADA]}}),
        ("admin.returned", "Organization", None, {"admins": {"returned": [ADA]}}),
        ("admin.removed", "Organization", None, {"admins": {"removed": [ADA]}}),
    ]
    assert {entry["subject_id"] for entry in entries(cursor)} == {ORG}


def test_a_reviewer_is_recorded_with_the_role(projection: AuditProjection, cursor: Cursor) -> None:
    organization = Organization(slug="acme", context=OPERATOR)
    organization.add_admin(ADA, OPERATOR, role="reviewer")
    feed(projection, cursor, organization.collect_events())
    assert what(cursor)[1] == (
        "admin.added",
        "Organization",
        None,
        {"admins": {"added": [ADA]}, "role": "reviewer"},
    )


def test_console_sign_in_is_recorded_by_person_without_any_secret(
    projection: AuditProjection, cursor: Cursor
) -> None:
    session_id = UUID(int=7)
    person = CommandContext(ORG_ID, Actor.person(session_id, ADA, "admin"), OKTA_REQUEST)
    link = SignInLink(
        org_id=ORG_ID, email=ADA, secret_hash="a" * 64, expires_at=at(900), context=OPERATOR
    )
    link.use(session_id, person)
    session = ConsoleSession(
        id=session_id,
        org_id=ORG_ID,
        email=ADA,
        role="admin",
        method="link",
        secret_hash="b" * 64,
        expires_at=at(43200),
        context=person,
    )
    session.end(person)
    feed(projection, cursor, [*link.collect_events(), *session.collect_events()])
    assert what(cursor) == [
        (
            "console.link_issued",
            "SignInLink",
            ADA,
            {"expires_at": change(None, "2030-01-01T12:15:00.000Z")},
        ),
        ("console.link_used", "SignInLink", ADA, {}),
        ("console.signed_in", "ConsoleSession", ADA, {"method": "link", "role": "admin"}),
        ("console.signed_out", "ConsoleSession", ADA, {}),
    ]
    found = entries(cursor)
    assert [(e["actor_kind"], e["actor_id"], e["actor_name"]) for e in found[1:]] == [
        ("person", session_id.hex, ADA)
    ] * 3
    assert "a" * 64 not in repr(found)
    assert "b" * 64 not in repr(found)


def test_a_settings_change_shows_the_value_set_before(
    projection: AuditProjection, cursor: Cursor
) -> None:
    organization = Organization(slug="acme", context=OPERATOR)
    organization.change_settings({"departed_policy": "revoke-after"}, OPERATOR)
    feed(projection, cursor, organization.collect_events())
    organization.change_settings(
        {"departed_policy": "warn", "departed_grace_seconds": 3600}, OPERATOR
    )
    feed(projection, cursor, organization.collect_events(), first=3)
    assert what(cursor)[2:] == [
        (
            "organization.settings_changed",
            "Organization",
            None,
            {
                "departed_policy": change("revoke-after", "warn"),
                "departed_grace_seconds": change(7 * 24 * 3600, 3600),
            },
        )
    ]


def test_the_first_settings_change_shows_the_default_as_before(
    projection: AuditProjection, cursor: Cursor
) -> None:
    organization = Organization(slug="acme", context=OPERATOR)
    organization.change_settings({"departed_policy": "revoke-after"}, OPERATOR)
    feed(projection, cursor, organization.collect_events())
    assert what(cursor)[1][3] == {"departed_policy": change("warn", "revoke-after")}


def test_token_events_name_the_token_and_never_its_secret_hash(
    projection: AuditProjection, cursor: Cursor
) -> None:
    token = new_token()
    feed(projection, cursor, token.collect_events())
    successor = UUID(int=9)
    token.rotate(successor, GRACE, OPERATOR)
    token.revoke(OPERATOR)
    feed(projection, cursor, token.collect_events(), first=2)
    assert what(cursor) == [
        (
            "token.issued",
            "Token",
            "Okta",
            {
                "name": change(None, "Okta"),
                "scopes": change(None, ["scim"]),
                "expires_at": change(None, "2031-01-01T12:00:00+00:00"),
                "issued_by_admin": change(None, ADA),
            },
        ),
        (
            "token.rotated",
            "Token",
            "Okta",
            {
                "successor": change(None, str(successor)),
                "grace_until": change(None, "2031-01-01T12:00:00+00:00"),
            },
        ),
        ("token.revoked", "Token", "Okta", {"revoked": change(False, True)}),
    ]
    assert "0" * 64 not in json.dumps([entries(cursor), subjects(cursor)])


def test_a_token_issued_by_no_admin_and_never_expiring_shows_neither(
    projection: AuditProjection, cursor: Cursor
) -> None:
    token = Token(
        org_id=ORG_ID,
        org_slug="acme",
        name="CI",
        secret_hash="0" * 64,
        expires_at=None,
        scopes=["audit:read"],
        context=OPERATOR,
        issued_by_admin=None,
    )
    feed(projection, cursor, token.collect_events())
    assert what(cursor)[0][3] == {
        "name": change(None, "CI"),
        "scopes": change(None, ["audit:read"]),
        "expires_at": change(None, None),
    }


def test_a_lifecycle_gives_the_same_entries_in_one_batch_or_one_per_event() -> None:
    with clock():
        user = new_user()
        user.replace_attributes({"userName": "ada.king@acme.example"}, CONTEXT)
        user.set_active(False, CONTEXT)
        user.delete(CONTEXT)
    events = user.collect_events()
    projection = AuditProjection()
    one_batch, per_event = database(projection), database(projection)
    feed(projection, one_batch, events)
    for position, event in enumerate(events, start=1):
        feed(projection, per_event, [event], first=position)
    assert entries(per_event) == entries(one_batch)
    assert [
        (row["position"], row["action"], row["subject_name"]) for row in entries(one_batch)
    ] == [
        (1, "user.created", "Ada@acme.example"),
        (2, "user.updated", "ada.king@acme.example"),
        (3, "user.deactivated", "ada.king@acme.example"),
        (4, "user.deleted", "ada.king@acme.example"),
    ]


def test_name_index_events_change_nothing(projection: AuditProjection, cursor: Cursor) -> None:
    index = NameIndex(org_id=ORG_ID, kind="userName", name="ada", owner_id=UUID(int=1))
    index.release()
    events = index.collect_events()
    projection.begin(cursor)
    for position, event in enumerate(events, start=1):  # past the runner's topic filter
        projection.add(cursor, projection.prepare(event), position)
    projection.end(cursor)
    assert (entries(cursor), subjects(cursor)) == ([], {})


def test_declaring_changing_and_removing_an_extension_show_what_changed(
    projection: AuditProjection, cursor: Cursor
) -> None:
    urn = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
    organization = Organization(slug="acme", context=OPERATOR)
    organization.declare_schema({"id": urn, "attributes": [{"name": "costCenter"}]}, OPERATOR)
    wider = {"id": urn, "attributes": [{"name": "costCenter"}, {"name": "seats"}]}
    organization.declare_schema(wider, OPERATOR)
    organization.remove_schema(urn, 2, OPERATOR)

    feed(projection, cursor, organization.collect_events())

    assert what(cursor)[1:] == [
        (
            "schema.declared",
            "Organization",
            urn,
            {
                "resourceType": change(None, "User"),
                "required": change(None, False),
                "attributes": change(None, ["costCenter"]),
            },
        ),
        (
            "schema.declared",
            "Organization",
            urn,
            {"attributes": change(["costCenter"], ["costCenter", "seats"])},
        ),
        ("schema.removed", "Organization", urn, {"schema": change(urn, None), "values_held": 2}),
    ]


def test_an_extension_s_change_reads_as_one_change_per_attribute() -> None:
    urn = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
    changes = {
        "title": change("a", "b"),
        urn: change({"costCenter": "42", "seats": 3}, {"costCenter": "43", "seats": 3, "x": 1}),
        f"{urn}x": change(None, {"y": "z"}),
        "name": change(None, {"givenName": "Ada"}),
        "erased": change(ERASED, ERASED),
    }

    assert flattened(changes) == {
        "title": change("a", "b"),
        f"{urn}:costCenter": change("42", "43"),
        f"{urn}:x": change(None, 1),
        f"{urn}x:y": change(None, "z"),
        "name": change(None, {"givenName": "Ada"}),  # a core complex value stays whole
        "erased": change(ERASED, ERASED),
    }
