"""Big groups stay cheap to load: snapshots after big membership changes and every 10 events."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from scimledger.http.services import Services
from scimledger.ledger.commands import GroupUpdate, NewGroup, NewUser
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
    written = services.ledger.create_group(
        context, NewGroup("Big", members=members), services.directory
    )
    assert snapshot_versions(services, written.id) == [2]
    group: Aggregate = services.ledger.group_repository.get(written.id)
    assert isinstance(group, Group)
    assert (group.display_name, group.version) == ("Big", 2)


def test_small_groups_are_snapshotted_every_ten_events_only(services: Services) -> None:
    context = acme(services)
    [member] = users(services, context, 1)
    written = services.ledger.create_group(context, NewGroup("Small"), services.directory)

    for n in range(11):  # joins at odd versions, leaves at even ones
        toggle = GroupUpdate(add={str(member)}) if n % 2 == 0 else GroupUpdate(remove={str(member)})
        services.ledger.update_group(context, written.id, toggle, services.directory)
    assert snapshot_versions(services, written.id) == [10]


def test_a_big_change_at_a_snapshot_interval_still_succeeds(services: Services) -> None:
    context = acme(services)
    pool = users(services, context, 100)
    written = services.ledger.create_group(context, NewGroup("Busy"), services.directory)

    for version in range(1, 9):  # to version 9
        rename = GroupUpdate(display_name=f"Busy {version}")
        services.ledger.update_group(context, written.id, rename, services.directory)

    add_all = GroupUpdate(add={str(u) for u in pool})

    # Version 10 is snapshotted by the interval and by the big change: one snapshot, no error.
    tenth = services.ledger.update_group(context, written.id, add_all, services.directory)
    assert tenth.version == 10
    assert snapshot_versions(services, written.id) == [10]
