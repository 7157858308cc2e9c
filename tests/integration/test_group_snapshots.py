"""Big groups stay cheap to load: snapshots after big membership changes and every 10 events."""

from __future__ import annotations

from uuid import UUID

from scimledger.http.services import Services
from scimledger.ledger.application import GroupChange, GroupState, NewGroup, NewUser
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.groups import Group
from tests.conftest import issue


def acme(services: Services) -> CommandContext:
    issue(services.ledger)
    org_id = services.ledger.organization_id("acme")
    assert org_id is not None
    return CommandContext(org_id, Actor(kind="token", id="t", name="Okta"), RequestInfo("r"))


def users(services: Services, context: CommandContext, count: int) -> list[UUID]:
    return [
        services.ledger.create_user(context, NewUser({"userName": f"u{n}@example.com"})).id
        for n in range(count)
    ]


def snapshot_versions(services: Services, group_id: UUID) -> list[int]:
    assert services.ledger.snapshots is not None
    return [s.originator_version for s in services.ledger.snapshots.get(group_id)]


def test_creating_a_group_with_many_members_snapshots_it_at_once(services: Services) -> None:
    context = acme(services)
    members = frozenset(users(services, context, 100))
    written = services.ledger.create_group(context, NewGroup("Big", members=members))
    assert snapshot_versions(services, written.id) == [2]
    group = services.ledger.group_repository.get(written.id)
    assert isinstance(group, Group)
    assert (group.display_name, group.version) == ("Big", 2)


def test_small_groups_are_snapshotted_every_ten_events_only(services: Services) -> None:
    context = acme(services)
    [member] = users(services, context, 1)
    written = services.ledger.create_group(context, NewGroup("Small"))

    def toggle(state: GroupState) -> GroupChange:
        joining = state.version % 2 == 1
        return GroupChange(
            state.display_name,
            state.external_id,
            add=frozenset({member}) if joining else frozenset(),
            remove=frozenset() if joining else frozenset({member}),
        )

    for _ in range(11):
        services.ledger.update_group(context, written.id, toggle)
    assert snapshot_versions(services, written.id) == [10]


def test_a_big_change_at_a_snapshot_interval_still_succeeds(services: Services) -> None:
    context = acme(services)
    pool = users(services, context, 100)
    written = services.ledger.create_group(context, NewGroup("Busy"))

    def rename(state: GroupState) -> GroupChange:
        return GroupChange(f"Busy {state.version}", state.external_id)

    for _ in range(8):  # to version 9
        services.ledger.update_group(context, written.id, rename)

    def add_all(state: GroupState) -> GroupChange:
        return GroupChange(state.display_name, state.external_id, add=frozenset(pool))

    # Version 10 is snapshotted by the interval and by the big change: one snapshot, no error.
    tenth = services.ledger.update_group(context, written.id, add_all)
    assert tenth.version == 10
    assert snapshot_versions(services, written.id) == [10]
