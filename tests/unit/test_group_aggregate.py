"""The Group aggregate (ledger.groups) on its own: the events each command records, the state
after, and the same state rebuilt from those events. No ledger, no event store."""

from __future__ import annotations

from uuid import UUID

from scimledger.ledger.groups import Group
from tests.unit.events import CONTEXT, OPERATOR, ORG_ID, T0, at, clock, recorded, replay

ALICE, BOB, CAROL = UUID(int=1), UUID(int=2), UUID(int=3)


def new_group() -> Group:
    """Engineering, created at T0 with its creation event already collected."""
    with clock():
        group = Group(
            org_id=ORG_ID, display_name="Engineering", external_id="okta-123", context=CONTEXT
        )
    group.collect_events()
    return group


def test_creating_a_group_records_group_created() -> None:
    with clock():
        group = Group(org_id=ORG_ID, display_name="Engineering", external_id=None, context=CONTEXT)
    assert recorded(group) == [
        (
            Group.GroupCreated,
            {
                "originator_version": 1,
                "timestamp": T0,
                "originator_topic": "scimledger.ledger.groups:Group",
                "org_id": ORG_ID,
                "display_name": "Engineering",
                "external_id": None,
                "context": CONTEXT,
            },
        )
    ]


def test_a_new_group_holds_what_it_was_created_with() -> None:
    group = new_group()
    assert (group.org_id, group.display_name, group.external_id, group.deleted) == (
        ORG_ID,
        "Engineering",
        "okta-123",
        False,
    )
    assert (group.version, group.created_on) == (1, T0)


def test_renaming_a_group_records_group_renamed() -> None:
    group = new_group()
    with clock(at(1)):
        group.rename("Platform Engineering", CONTEXT)
    assert recorded(group) == [
        (
            Group.GroupRenamed,
            {
                "originator_version": 2,
                "timestamp": at(1),
                "display_name": "Platform Engineering",
                "context": CONTEXT,
            },
        )
    ]
    assert group.display_name == "Platform Engineering"


def test_renaming_a_group_to_its_own_name_records_nothing() -> None:
    group = new_group()
    group.rename("Engineering", CONTEXT)
    assert recorded(group) == []
    assert group.version == 1


def test_a_rename_that_only_changes_case_is_recorded() -> None:
    group = new_group()
    group.rename("ENGINEERING", CONTEXT)
    [(kind, fields)] = recorded(group)
    assert (kind, fields["display_name"]) == (Group.GroupRenamed, "ENGINEERING")
    assert group.display_name == "ENGINEERING"


def test_changing_the_external_id_records_group_external_id_changed() -> None:
    group = new_group()
    with clock(at(1)):
        group.set_external_id("okta-456", OPERATOR)
    assert recorded(group) == [
        (
            Group.GroupExternalIdChanged,
            {
                "originator_version": 2,
                "timestamp": at(1),
                "external_id": "okta-456",
                "context": OPERATOR,
            },
        )
    ]
    assert group.external_id == "okta-456"


def test_clearing_the_external_id_records_none() -> None:
    group = new_group()
    group.set_external_id(None, CONTEXT)
    [(kind, fields)] = recorded(group)
    assert (kind, fields["external_id"]) == (Group.GroupExternalIdChanged, None)
    assert group.external_id is None


def test_setting_the_same_external_id_records_nothing() -> None:
    group = new_group()
    group.set_external_id("okta-123", CONTEXT)
    assert recorded(group) == []
    assert group.version == 1


def test_adding_members_records_their_ids_sorted() -> None:
    group = new_group()
    with clock(at(1)):
        group.add_members([CAROL, ALICE, BOB], CONTEXT)
    assert recorded(group) == [
        (
            Group.MembersAdded,
            {
                "originator_version": 2,
                "timestamp": at(1),
                "user_ids": [ALICE, BOB, CAROL],
                "context": CONTEXT,
            },
        )
    ]
    assert (group.version, group.modified_on) == (2, at(1))


def test_adding_no_members_records_nothing() -> None:
    group = new_group()
    group.add_members([], CONTEXT)
    assert recorded(group) == []


def test_initial_members_are_stamped_at_the_creation_instant() -> None:
    with clock():
        group = Group(org_id=ORG_ID, display_name="Engineering", external_id=None, context=CONTEXT)
        group.add_initial_members([BOB, ALICE], CONTEXT)
    [_, (kind, fields)] = recorded(group)
    assert (kind, fields) == (
        Group.MembersAdded,
        {"originator_version": 2, "timestamp": T0, "user_ids": [ALICE, BOB], "context": CONTEXT},
    )
    assert group.modified_on == group.created_on


def test_no_initial_members_records_nothing() -> None:
    group = new_group()
    group.add_initial_members([], CONTEXT)
    assert recorded(group) == []


def test_removing_members_records_their_ids_sorted() -> None:
    group = new_group()
    with clock(at(1)):
        group.remove_members([BOB, ALICE], CONTEXT)
    assert recorded(group) == [
        (
            Group.MembersRemoved,
            {
                "originator_version": 2,
                "timestamp": at(1),
                "user_ids": [ALICE, BOB],
                "context": CONTEXT,
            },
        )
    ]


def test_removing_no_members_records_nothing() -> None:
    group = new_group()
    group.remove_members([], CONTEXT)
    assert recorded(group) == []


def test_deleting_a_group_records_group_deleted() -> None:
    group = new_group()
    with clock(at(1)):
        group.delete(CONTEXT)
    assert recorded(group) == [
        (Group.GroupDeleted, {"originator_version": 2, "timestamp": at(1), "context": CONTEXT})
    ]
    assert group.deleted is True


def test_deleting_a_deleted_group_records_nothing() -> None:
    group = new_group()
    group.delete(CONTEXT)
    group.collect_events()
    group.delete(CONTEXT)
    assert recorded(group) == []


def test_replaying_a_groups_events_rebuilds_the_same_group() -> None:
    with clock():
        group = Group(org_id=ORG_ID, display_name="Engineering", external_id=None, context=CONTEXT)
        group.add_initial_members([ALICE], CONTEXT)
        group.rename("Platform", CONTEXT)
        group.set_external_id("okta-9", CONTEXT)
        group.add_members([BOB, CAROL], CONTEXT)
        group.remove_members([ALICE], CONTEXT)
        group.delete(CONTEXT)
    events = group.collect_events()
    assert len(events) == 7
    assert replay(Group, events) == group
