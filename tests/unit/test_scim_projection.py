"""The SCIM read model's projection (projections.scim_projection) fed events directly:
events made by the aggregates, applied through the projection protocol on an in-memory
SQLite database, and the exact rows they leave. No ledger, no event store."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from scimledger.ledger.groups import Group
from scimledger.ledger.names import NameIndex
from scimledger.ledger.organizations import Organization
from scimledger.ledger.tokens import Token
from scimledger.ledger.users import User
from scimledger.projections.scim_projection import ScimProjection
from scimledger.projections.sql import Cursor
from tests.unit.events import (
    CONTEXT,
    OPERATOR,
    ORG_ID,
    OTHER_ORG_ID,
    Event,
    at,
    clock,
    database,
    feed,
    rows,
)

ORG = str(ORG_ID)
ADA: dict[str, Any] = {
    "userName": "Ada@ACME.example",
    "externalId": "00u1AbC",
    "name": {"givenName": "Ada", "familyName": "Lovelace"},
}
ADA_JSON = (
    '{"userName":"Ada@ACME.example","externalId":"00u1AbC",'
    '"name":{"givenName":"Ada","familyName":"Lovelace"}}'
)
ADA_SEARCH = (
    '{"userName":"ada@acme.example","externalId":"00u1abc",'
    '"name":{"givenName":"ada","familyName":"lovelace"}}'
)


@pytest.fixture
def projection() -> ScimProjection:
    return ScimProjection()


@pytest.fixture
def cursor(projection: ScimProjection) -> Cursor:
    return database(projection)


def new_user(attributes: dict[str, Any] = ADA, org_id: UUID = ORG_ID) -> User:
    return User(org_id=org_id, attributes=attributes, active=True, context=CONTEXT)


def new_group(display_name: str = "Engineering") -> Group:
    return Group(org_id=ORG_ID, display_name=display_name, external_id="grp-1", context=CONTEXT)


def users(cursor: Cursor) -> list[dict[str, Any]]:
    return rows(cursor, "SELECT * FROM scim_users ORDER BY seq")


def groups(cursor: Cursor) -> list[dict[str, Any]]:
    return rows(cursor, "SELECT * FROM scim_groups ORDER BY seq")


def members(cursor: Cursor) -> list[tuple[str, str]]:
    found = rows(cursor, "SELECT * FROM scim_group_members ORDER BY group_id, user_id")
    return [(row["group_id"], row["user_id"]) for row in found]


def counts(cursor: Cursor) -> list[dict[str, Any]]:
    return rows(cursor, "SELECT * FROM scim_user_counts ORDER BY org_id")


def ada_row(user: User, **changed: Any) -> dict[str, Any]:
    """Ada's row as her creation at position 1 and T0 writes it, with `changed` columns."""
    row = {
        "id": str(user.id),
        "org_id": ORG,
        "seq": 1,
        "user_name_norm": "ada@acme.example",
        "external_id": "00u1AbC",
        "active": 1,
        "version": 1,
        "created": "2030-01-01T12:00:00.000Z",
        "last_modified": "2030-01-01T12:00:00.000Z",
        "attributes": ADA_JSON,
        "search": ADA_SEARCH,
        "people_text": "ada@acme.example\nada\nlovelace",
    }
    return {**row, **changed}


def created(cursor: Cursor, projection: ScimProjection) -> User:
    """Ada, created at T0 and applied at position 1; later events tick from T0 + 1 s."""
    with clock():
        user = new_user()
    feed(projection, cursor, user.collect_events())
    return user


def test_it_applies_the_user_and_group_events_only() -> None:
    assert set(ScimProjection().topics) == {
        User.UserCreated,
        User.ProfileUpdated,
        User.UserDeactivated,
        User.UserReactivated,
        User.PasswordChanged,
        User.UserDeleted,
        Group.GroupCreated,
        Group.GroupRenamed,
        Group.GroupExternalIdChanged,
        Group.MembersAdded,
        Group.MembersRemoved,
        Group.GroupDeleted,
        Group.ExtensionsChanged,
    }


def test_a_created_user_is_a_row_with_its_attributes_and_their_folded_form(
    projection: ScimProjection, cursor: Cursor
) -> None:
    user = created(cursor, projection)
    assert users(cursor) == [ada_row(user)]


def test_a_created_user_counts_in_its_organization(
    projection: ScimProjection, cursor: Cursor
) -> None:
    created(cursor, projection)
    assert counts(cursor) == [{"org_id": ORG, "users": 1, "deleted": 0}]


def test_a_users_seq_is_the_position_of_its_creation(
    projection: ScimProjection, cursor: Cursor
) -> None:
    with clock():
        user = new_user()
    feed(projection, cursor, user.collect_events(), first=42)
    assert [row["seq"] for row in users(cursor)] == [42]


def test_an_inactive_created_user_is_an_inactive_row(
    projection: ScimProjection, cursor: Cursor
) -> None:
    user = User(org_id=ORG_ID, attributes={"userName": "eve"}, active=False, context=CONTEXT)
    feed(projection, cursor, user.collect_events())
    [row] = users(cursor)
    assert (row["active"], row["external_id"], row["attributes"]) == (0, None, '{"userName":"eve"}')


def test_a_profile_update_rewrites_the_attributes_name_and_external_id(
    projection: ScimProjection, cursor: Cursor
) -> None:
    user = created(cursor, projection)
    with clock(at(1)):
        user.replace_attributes({"userName": "ada.king@acme.example", "title": "Countess"}, CONTEXT)
    feed(projection, cursor, user.collect_events(), first=2)
    assert users(cursor) == [
        ada_row(
            user,
            user_name_norm="ada.king@acme.example",
            external_id=None,
            version=2,
            last_modified="2030-01-01T12:00:01.000Z",
            attributes='{"userName":"ada.king@acme.example","title":"Countess"}',
            search='{"userName":"ada.king@acme.example","title":"countess"}',
            people_text="ada.king@acme.example",
        )
    ]


def test_a_deactivated_user_is_an_inactive_row(projection: ScimProjection, cursor: Cursor) -> None:
    user = created(cursor, projection)
    with clock(at(1)):
        user.set_active(False, CONTEXT)
    feed(projection, cursor, user.collect_events(), first=2)
    assert users(cursor) == [
        ada_row(user, active=0, version=2, last_modified="2030-01-01T12:00:01.000Z")
    ]


def test_a_reactivated_user_is_an_active_row_again(
    projection: ScimProjection, cursor: Cursor
) -> None:
    user = created(cursor, projection)
    with clock(at(1)):
        user.set_active(False, CONTEXT)
        user.set_active(True, CONTEXT)
    feed(projection, cursor, user.collect_events(), first=2)
    assert users(cursor) == [
        ada_row(user, active=1, version=3, last_modified="2030-01-01T12:00:02.000Z")
    ]


def test_a_password_change_only_moves_version_and_last_modified(
    projection: ScimProjection, cursor: Cursor
) -> None:
    user = created(cursor, projection)
    with clock(at(1)):
        user.set_password_hash("scrypt$secret-hash", CONTEXT)
    feed(projection, cursor, user.collect_events(), first=2)
    assert users(cursor) == [ada_row(user, version=2, last_modified="2030-01-01T12:00:01.000Z")]


def test_a_deleted_user_has_no_row_and_counts_as_deleted(
    projection: ScimProjection, cursor: Cursor
) -> None:
    user = created(cursor, projection)
    user.delete(CONTEXT)
    feed(projection, cursor, user.collect_events(), first=2)
    assert users(cursor) == []
    assert counts(cursor) == [{"org_id": ORG, "users": 0, "deleted": 1}]


def test_a_user_created_and_deleted_in_one_batch_leaves_no_row_and_counts_as_deleted(
    projection: ScimProjection, cursor: Cursor
) -> None:
    user = new_user()
    user.delete(CONTEXT)
    feed(projection, cursor, user.collect_events())
    assert users(cursor) == []
    assert counts(cursor) == [{"org_id": ORG, "users": 0, "deleted": 1}]


def test_users_are_counted_per_organization(projection: ScimProjection, cursor: Cursor) -> None:
    ada, bob, eve = new_user(), new_user({"userName": "bob"}), new_user({"userName": "eve"})
    other = new_user({"userName": "zed"}, org_id=OTHER_ORG_ID)
    eve.delete(CONTEXT)
    feed(
        projection, cursor, [*ada.collect_events(), *bob.collect_events(), *other.collect_events()]
    )
    feed(projection, cursor, eve.collect_events(), first=4)
    assert counts(cursor) == [  # ordered by org_id: globex's id sorts first
        {"org_id": str(OTHER_ORG_ID), "users": 1, "deleted": 0},
        {"org_id": ORG, "users": 2, "deleted": 1},
    ]


def test_an_update_of_a_user_without_a_row_writes_nothing(
    projection: ScimProjection, cursor: Cursor
) -> None:
    user = new_user()
    user.collect_events()  # never applied
    user.replace_attributes({"userName": "ghost"}, CONTEXT)
    user.set_active(False, CONTEXT)
    feed(projection, cursor, user.collect_events(), first=2)
    assert (users(cursor), counts(cursor)) == ([], [])


def test_a_created_group_is_a_row(projection: ScimProjection, cursor: Cursor) -> None:
    with clock():
        group = new_group("Platform Team")
    feed(projection, cursor, group.collect_events(), first=5)
    assert groups(cursor) == [
        {
            "id": str(group.id),
            "org_id": ORG,
            "seq": 5,
            "display_name": "Platform Team",
            "display_name_norm": "platform team",
            "external_id": "grp-1",
            "version": 1,
            "created": "2030-01-01T12:00:00.000Z",
            "last_modified": "2030-01-01T12:00:00.000Z",
            "attributes": "{}",
            "search": "{}",
        }
    ]


def test_a_renamed_group_has_its_new_name(projection: ScimProjection, cursor: Cursor) -> None:
    with clock():
        group = new_group()
        feed(projection, cursor, group.collect_events())
        group.rename("Platform", CONTEXT)
    feed(projection, cursor, group.collect_events(), first=2)
    [row] = groups(cursor)
    assert (row["display_name"], row["display_name_norm"], row["version"]) == (
        "Platform",
        "platform",
        2,
    )
    assert (row["created"], row["last_modified"]) == (
        "2030-01-01T12:00:00.000Z",
        "2030-01-01T12:00:01.000Z",
    )


def test_a_groups_external_id_change_is_written(projection: ScimProjection, cursor: Cursor) -> None:
    group = new_group()
    feed(projection, cursor, group.collect_events())
    group.set_external_id(None, CONTEXT)
    feed(projection, cursor, group.collect_events(), first=2)
    [row] = groups(cursor)
    assert (row["external_id"], row["version"]) == (None, 2)


def test_added_members_are_rows(projection: ScimProjection, cursor: Cursor) -> None:
    ada, bob, group = new_user(), new_user({"userName": "bob"}), new_group()
    group.add_members([ada.id, bob.id], CONTEXT)
    feed(
        projection,
        cursor,
        [*ada.collect_events(), *bob.collect_events(), *group.collect_events()],
    )
    assert members(cursor) == sorted([(str(group.id), str(ada.id)), (str(group.id), str(bob.id))])
    [row] = groups(cursor)
    assert row["version"] == 2


def test_a_member_who_has_no_user_row_is_not_written(
    projection: ScimProjection, cursor: Cursor
) -> None:
    ada, group = new_user(), new_group()
    group.add_members([ada.id, UUID(int=404)], CONTEXT)
    feed(projection, cursor, [*ada.collect_events(), *group.collect_events()])
    assert members(cursor) == [(str(group.id), str(ada.id))]


def test_removed_members_are_no_rows(projection: ScimProjection, cursor: Cursor) -> None:
    ada, bob, group = new_user(), new_user({"userName": "bob"}), new_group()
    group.add_members([ada.id, bob.id], CONTEXT)
    feed(
        projection,
        cursor,
        [*ada.collect_events(), *bob.collect_events(), *group.collect_events()],
    )
    group.remove_members([ada.id], CONTEXT)
    feed(projection, cursor, group.collect_events(), first=4)
    assert members(cursor) == [(str(group.id), str(bob.id))]
    assert groups(cursor)[0]["version"] == 3


def test_a_member_added_and_removed_in_one_batch_is_no_row(
    projection: ScimProjection, cursor: Cursor
) -> None:
    ada, group = new_user(), new_group()
    group.add_members([ada.id], CONTEXT)
    group.remove_members([ada.id], CONTEXT)
    feed(projection, cursor, [*ada.collect_events(), *group.collect_events()])
    assert members(cursor) == []


def test_a_deleted_user_leaves_every_group(projection: ScimProjection, cursor: Cursor) -> None:
    ada, bob, group = new_user(), new_user({"userName": "bob"}), new_group()
    group.add_members([ada.id, bob.id], CONTEXT)
    feed(
        projection,
        cursor,
        [*ada.collect_events(), *bob.collect_events(), *group.collect_events()],
    )
    ada.delete(CONTEXT)
    feed(projection, cursor, ada.collect_events(), first=4)
    assert members(cursor) == [(str(group.id), str(bob.id))]


def test_a_deactivated_user_stays_a_member(projection: ScimProjection, cursor: Cursor) -> None:
    ada, group = new_user(), new_group()
    group.add_members([ada.id], CONTEXT)
    feed(projection, cursor, [*ada.collect_events(), *group.collect_events()])
    ada.set_active(False, CONTEXT)
    feed(projection, cursor, ada.collect_events(), first=3)
    assert members(cursor) == [(str(group.id), str(ada.id))]


def test_a_deleted_group_has_no_row_and_no_members(
    projection: ScimProjection, cursor: Cursor
) -> None:
    ada, group = new_user(), new_group()
    group.add_members([ada.id], CONTEXT)
    feed(projection, cursor, [*ada.collect_events(), *group.collect_events()])
    group.delete(CONTEXT)
    feed(projection, cursor, group.collect_events(), first=3)
    assert (groups(cursor), members(cursor)) == ([], [])
    assert len(users(cursor)) == 1


def lifecycle() -> tuple[User, Group, list[Event]]:
    """Ada and a group through create, update, membership, deactivate, reactivate, delete;
    Bob created and kept."""
    with clock():
        ada, bob = new_user(), new_user({"userName": "bob@acme.example"})
        group = new_group()
        group.add_members([ada.id, bob.id], CONTEXT)
        ada.replace_attributes({**ADA, "title": "Countess"}, CONTEXT)
        ada.set_active(False, CONTEXT)
        group.rename("Platform", CONTEXT)
        ada.set_active(True, CONTEXT)
        ada.delete(CONTEXT)
        group.remove_members([bob.id], CONTEXT)
    events = sorted(
        [*ada.collect_events(), *bob.collect_events(), *group.collect_events()],
        key=lambda event: event.timestamp,
    )
    return bob, group, events


def expected_after_lifecycle(bob: User, group: Group) -> tuple[list[Any], ...]:
    return (
        [
            {
                "id": str(bob.id),
                "org_id": ORG,
                "seq": 2,
                "user_name_norm": "bob@acme.example",
                "external_id": None,
                "active": 1,
                "version": 1,
                "created": "2030-01-01T12:00:01.000Z",
                "last_modified": "2030-01-01T12:00:01.000Z",
                "attributes": '{"userName":"bob@acme.example"}',
                "search": '{"userName":"bob@acme.example"}',
                "people_text": "bob@acme.example",
            }
        ],
        [
            {
                "id": str(group.id),
                "org_id": ORG,
                "seq": 3,
                "display_name": "Platform",
                "display_name_norm": "platform",
                "external_id": "grp-1",
                "version": 4,
                "created": "2030-01-01T12:00:02.000Z",
                "last_modified": "2030-01-01T12:00:09.000Z",
                "attributes": "{}",
                "search": "{}",
            }
        ],
        [],
        [{"org_id": ORG, "users": 1, "deleted": 1}],
    )


def test_a_lifecycle_in_one_batch_leaves_the_final_rows(
    projection: ScimProjection, cursor: Cursor
) -> None:
    bob, group, events = lifecycle()
    feed(projection, cursor, events)
    assert (users(cursor), groups(cursor), members(cursor), counts(cursor)) == (
        expected_after_lifecycle(bob, group)
    )


def test_a_lifecycle_one_event_per_batch_leaves_the_same_rows(
    projection: ScimProjection, cursor: Cursor
) -> None:
    bob, group, events = lifecycle()
    for position, event in enumerate(events, start=1):
        feed(projection, cursor, [event], first=position)
    assert (users(cursor), groups(cursor), members(cursor), counts(cursor)) == (
        expected_after_lifecycle(bob, group)
    )


def test_organization_token_and_name_events_change_nothing(
    projection: ScimProjection, cursor: Cursor
) -> None:
    organization = Organization(slug="acme", context=OPERATOR)
    organization.add_admin("ada@acme.example", OPERATOR)
    token = Token(
        org_id=ORG_ID,
        org_slug="acme",
        name="Okta",
        secret_hash="0" * 64,
        expires_at=None,
        scopes=["scim"],
        context=OPERATOR,
        issued_by_admin=None,
    )
    token.revoke(OPERATOR)
    index = NameIndex(org_id=ORG_ID, kind="userName", name="ada", owner_id=UUID(int=1))
    index.release()
    feed(
        projection,
        cursor,
        [*organization.collect_events(), *token.collect_events(), *index.collect_events()],
    )
    assert (users(cursor), groups(cursor), members(cursor), counts(cursor)) == ([], [], [], [])


def test_a_group_s_extension_values_are_its_attributes_and_their_folded_form(
    projection: ScimProjection, cursor: Cursor
) -> None:
    urn = "urn:ietf:params:scim:schemas:extension:acme:2.0:Group"
    with clock():
        group = new_group("Platform Team")
        group.replace_extensions({urn: {"site": "Zürich", "floor": 3}}, CONTEXT, at_creation=True)
        feed(projection, cursor, group.collect_events())
        group.replace_extensions({urn: {"site": "Basel"}}, CONTEXT)
        feed(projection, cursor, group.collect_events(), first=3)

    [row] = groups(cursor)
    assert (row["version"], row["attributes"], row["search"]) == (
        3,
        f'{{"{urn}":{{"site":"Basel"}}}}',
        f'{{"{urn}":{{"site":"basel"}}}}',
    )
