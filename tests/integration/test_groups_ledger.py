"""Groups on the write side, on real databases: events and their context, uniqueness under
concurrency, membership changes racing each other, and loading from snapshots."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Snapshot

from scimledger.http.services import Services
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import GroupUpdate, NewGroup, NewUser
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.errors import GroupNameTaken
from scimledger.ledger.groups import Group
from scimledger.projections import scim
from scimledger.projections.directory import ScimDirectory
from scimledger.projections.runner import Runner
from scimledger.projections.scim_projection import ScimProjection
from scimledger.projections.sql import SQL
from tests.conftest import issue
from tests.scim import CORE_GROUP, CORE_USER, PATCH_OP, Client

ACTOR = Actor(kind="token", id="t-1", name="Okta", issued_by="operator:admin")


def context_for(ledger: Ledger, request_id: str = "r-1", org: str = "acme") -> CommandContext:
    if ledger.organization_id(org) is None:
        issue(ledger, org=org)
    org_id = ledger.organization_id(org)
    assert org_id is not None
    request = RequestInfo(
        request_id=request_id, client_address="203.0.113.7", user_agent="Okta SCIM"
    )
    return CommandContext(org_id=org_id, actor=ACTOR, request=request)


def stored(ledger: Ledger, after: int = 0) -> list[Any]:
    """Every event recorded after log position `after`, decoded."""
    notifications = ledger.recorder.select_notifications(start=after + 1, limit=10_000)
    return [ledger.mapper.to_domain_event(n) for n in notifications]


def head(ledger: Ledger) -> int:
    return ledger.recorder.max_notification_id() or 0


def new_users(
    ledger: Ledger, context: CommandContext, count: int, prefix: str = "user"
) -> list[UUID]:
    return [
        ledger.create_user(context, NewUser(attributes={"userName": f"{prefix}{n}@example.com"})).id
        for n in range(count)
    ]


def changing(
    *,
    display_name: str | None = None,
    add: set[UUID] | frozenset[UUID] = frozenset(),
    remove: set[UUID] | frozenset[UUID] = frozenset(),
) -> GroupUpdate:
    """An update that renames (if given) and adds and removes the given users."""
    update = GroupUpdate(add={str(u) for u in add}, remove={str(u) for u in remove})
    if display_name is not None:
        update.display_name = display_name
    return update


@pytest.fixture
def directory(ledger: Ledger) -> ScimDirectory:
    """The SCIM read model, caught up by the ledger when it plans a membership change."""
    runner = Runner(ledger, ScimProjection())
    runner.run_once()
    return ScimDirectory(SQL(ledger), runner.catch_up)


def run_together(count: int, work: Callable[[int], object]) -> list[BaseException]:
    """Runs `work(0..count-1)` in threads released at once; the exceptions they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            work(n)
        except BaseException as exc:  # reported to the test, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def load(ledger: Ledger, group_id: UUID) -> Group:
    """The group as the ledger loads it (from its latest snapshot, if any)."""
    group: object = ledger.group_repository.get(group_id)
    assert isinstance(group, Group)
    return group


def read_members(services: Services, group_id: UUID) -> set[str]:
    services.scim.catch_up()
    with services.sql.transaction(commit=False) as cursor:
        return scim.all_members(cursor, str(group_id))


# Every event carries the context of the command that recorded it


def test_group_created_carries_the_context_organization_and_name(
    ledger: Ledger, directory: ScimDirectory
) -> None:
    context = context_for(ledger, "create")
    before = head(ledger)

    written = ledger.create_group(context, NewGroup("Sales", external_id="00g1"), directory)

    [created] = [e for e in stored(ledger, before) if e.originator_id == written.id]
    assert type(created) is Group.GroupCreated
    assert created.context == context
    assert created.org_id == context.org_id
    assert created.display_name == "Sales"
    assert created.external_id == "00g1"
    assert created.originator_version == written.version == 1


def test_group_renamed_carries_the_context(ledger: Ledger, directory: ScimDirectory) -> None:
    written = ledger.create_group(context_for(ledger), NewGroup("Sales"), directory)
    context = context_for(ledger, "rename")
    before = head(ledger)

    ledger.update_group(context, written.id, changing(display_name="Revenue"), directory)

    [renamed] = [e for e in stored(ledger, before) if e.originator_id == written.id]
    assert type(renamed) is Group.GroupRenamed
    assert renamed.display_name == "Revenue"
    assert renamed.context == context


def test_members_added_carries_the_context_and_the_added_ids(
    ledger: Ledger, directory: ScimDirectory
) -> None:
    first = context_for(ledger)
    users = new_users(ledger, first, 2)
    written = ledger.create_group(first, NewGroup("Sales"), directory)
    context = context_for(ledger, "add")
    before = head(ledger)

    ledger.update_group(context, written.id, changing(add=set(users)), directory)

    [added] = [e for e in stored(ledger, before) if e.originator_id == written.id]
    assert type(added) is Group.MembersAdded
    assert added.user_ids == sorted(users)
    assert added.context == context


def test_members_removed_carries_the_context_and_the_removed_ids(
    ledger: Ledger, directory: ScimDirectory
) -> None:
    first = context_for(ledger)
    users = new_users(ledger, first, 2)
    written = ledger.create_group(first, NewGroup("Sales", members=frozenset(users)), directory)
    context = context_for(ledger, "remove")
    before = head(ledger)

    ledger.update_group(context, written.id, changing(remove={users[1]}), directory)

    [removed] = [e for e in stored(ledger, before) if e.originator_id == written.id]
    assert type(removed) is Group.MembersRemoved
    assert removed.user_ids == [users[1]]
    assert removed.context == context


def test_group_deleted_carries_the_context(ledger: Ledger, directory: ScimDirectory) -> None:
    written = ledger.create_group(context_for(ledger), NewGroup("Sales"), directory)
    context = context_for(ledger, "delete")
    before = head(ledger)

    ledger.delete_group(context, written.id)

    [deleted] = [e for e in stored(ledger, before) if e.originator_id == written.id]
    assert type(deleted) is Group.GroupDeleted
    assert deleted.context == context


def test_an_update_that_changes_nothing_records_nothing(
    ledger: Ledger, directory: ScimDirectory
) -> None:
    context = context_for(ledger)
    written = ledger.create_group(context, NewGroup("Sales"), directory)
    before = head(ledger)

    result = ledger.update_group(context, written.id, changing(display_name="Sales"), directory)

    assert result.position is None
    assert result.version == 1
    assert head(ledger) == before


# displayName uniqueness under concurrency


def test_concurrent_creates_of_one_display_name_yield_exactly_one_group(
    ledger: Ledger,
    directory: ScimDirectory,
) -> None:
    context = context_for(ledger)
    outcomes: list[str] = []

    def create(n: int) -> None:
        # "Sales" and "SALES" alternate: they are one name.
        try:
            ledger.create_group(context, NewGroup("Sales" if n % 2 else "SALES"), directory)
        except GroupNameTaken:
            outcomes.append("taken")
        else:
            outcomes.append("created")

    errors = run_together(8, create)

    assert errors == []
    assert sorted(outcomes) == ["created"] + ["taken"] * 7
    assert len([e for e in stored(ledger) if type(e) is Group.GroupCreated]) == 1


def test_concurrent_renames_to_one_display_name_leave_exactly_one_group_with_it(
    ledger: Ledger,
    directory: ScimDirectory,
) -> None:
    context = context_for(ledger)
    groups = [ledger.create_group(context, NewGroup(f"Group {n}"), directory).id for n in range(6)]
    outcomes: list[str] = []

    def rename(n: int) -> None:
        try:
            ledger.update_group(context, groups[n], changing(display_name="Sales"), directory)
        except GroupNameTaken:
            outcomes.append("taken")
        else:
            outcomes.append("renamed")

    errors = run_together(6, rename)

    assert errors == []
    assert sorted(outcomes) == ["renamed"] + ["taken"] * 5
    renamed = [e for e in stored(ledger) if type(e) is Group.GroupRenamed]
    assert [e.display_name for e in renamed] == ["Sales"]


# Membership changes racing each other


def test_concurrent_member_additions_through_the_ledger_lose_no_update(
    services: Services,
) -> None:
    ledger = services.ledger
    context = context_for(ledger)
    users = new_users(ledger, context, 6)
    group_id = ledger.create_group(context, NewGroup("Sales"), services.directory).id

    errors = run_together(
        6,
        lambda n: ledger.update_group(
            context, group_id, changing(add={users[n]}), services.directory
        ),
    )

    assert errors == []
    assert read_members(services, group_id) == {str(u) for u in users}
    assert load(ledger, group_id).version == 7


def test_concurrent_additions_and_removals_through_the_ledger_lose_no_update(
    services: Services,
) -> None:
    ledger = services.ledger
    context = context_for(ledger)
    leaving = new_users(ledger, context, 5)
    joining = new_users(ledger, context, 5, prefix="new")
    group_id = ledger.create_group(
        context, NewGroup("Sales", members=frozenset(leaving)), services.directory
    ).id

    errors = run_together(
        5,
        lambda n: ledger.update_group(
            context, group_id, changing(add={joining[n]}, remove={leaving[n]}), services.directory
        ),
    )

    assert errors == []
    assert read_members(services, group_id) == {str(u) for u in joining}


def test_concurrent_member_patches_over_http_lose_no_update(
    client: Client,
    services: Services,
) -> None:
    users = [
        client.post(
            "/scim/v2/Users", json={"schemas": [CORE_USER], "userName": f"u{n}@example.com"}
        ).json()["id"]
        for n in range(6)
    ]
    group = client.post(
        "/scim/v2/Groups", json={"schemas": [CORE_GROUP], "displayName": "Sales"}
    ).json()
    statuses: list[int] = []

    def add(n: int) -> None:
        response = client.patch(
            f"/scim/v2/Groups/{group['id']}",
            json={
                "schemas": [PATCH_OP],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": users[n]}]}],
            },
        )
        statuses.append(response.status_code)

    errors = run_together(6, add)

    assert errors == []
    assert statuses == [200] * 6
    final = client.get(f"/scim/v2/Groups/{group['id']}").json()
    assert [m["value"] for m in final["members"]] == users
    assert final["meta"]["version"] == 'W/"7"'


def test_concurrent_removals_over_http_of_different_members_lose_no_update(
    client: Client,
    services: Services,
) -> None:
    users = [
        client.post(
            "/scim/v2/Users", json={"schemas": [CORE_USER], "userName": f"u{n}@example.com"}
        ).json()["id"]
        for n in range(6)
    ]
    group = client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [CORE_GROUP],
            "displayName": "Sales",
            "members": [{"value": user} for user in users],
        },
    ).json()
    statuses: list[int] = []

    def remove(n: int) -> None:
        response = client.patch(
            f"/scim/v2/Groups/{group['id']}",
            json={
                "schemas": [PATCH_OP],
                "Operations": [{"op": "remove", "path": f'members[value eq "{users[n]}"]'}],
            },
        )
        statuses.append(response.status_code)

    errors = run_together(5, remove)

    assert errors == []
    assert statuses == [200] * 5
    final = client.get(f"/scim/v2/Groups/{group['id']}").json()
    assert [m["value"] for m in final["members"]] == [users[5]]
    assert final["meta"]["version"] == 'W/"7"'


# Snapshots


@pytest.fixture
def renamed_eleven_times(ledger: Ledger, directory: ScimDirectory) -> UUID:
    """A group at version 12: created, then renamed eleven times."""
    context = context_for(ledger)
    group_id = ledger.create_group(context, NewGroup("Name 0"), directory).id
    for n in range(1, 12):
        ledger.update_group(context, group_id, changing(display_name=f"Name {n}"), directory)
    return group_id


def test_a_group_with_more_than_ten_events_has_a_snapshot_at_version_ten(
    ledger: Ledger,
    renamed_eleven_times: UUID,
) -> None:
    assert ledger.snapshots is not None
    snapshots = list(ledger.snapshots.get(renamed_eleven_times))

    assert [s.originator_version for s in snapshots] == [10]
    assert isinstance(snapshots[0], Snapshot)
    assert snapshots[0].state["display_name"] == "Name 9"


def test_a_group_with_a_snapshot_loads_from_it(
    ledger: Ledger,
    renamed_eleven_times: UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events_read_after: list[int | None] = []
    get_events = ledger.events.get

    def spy(*args: Any, **kwargs: Any) -> Any:
        events_read_after.append(kwargs.get("gt"))
        return get_events(*args, **kwargs)

    monkeypatch.setattr(ledger.events, "get", spy)

    group = load(ledger, renamed_eleven_times)

    assert events_read_after == [10]
    assert group.display_name == "Name 11"
    assert group.version == 12


def test_a_group_loaded_from_a_snapshot_accepts_further_changes(
    ledger: Ledger,
    directory: ScimDirectory,
    renamed_eleven_times: UUID,
) -> None:
    context = context_for(ledger)

    written = ledger.update_group(
        context, renamed_eleven_times, changing(display_name="Final"), directory
    )

    assert written.version == 13
    group = load(ledger, renamed_eleven_times)
    assert group.display_name == "Final"
    assert group.version == 13


def test_a_save_that_passes_version_ten_takes_a_snapshot(
    ledger: Ledger, directory: ScimDirectory
) -> None:
    context = context_for(ledger)
    users = new_users(ledger, context, 1)
    group_id = ledger.create_group(context, NewGroup("Name 0"), directory).id
    for n in range(1, 9):
        ledger.update_group(context, group_id, changing(display_name=f"Name {n}"), directory)

    # One save records versions 10 and 11: a rename and an addition.
    ledger.update_group(
        context, group_id, changing(display_name="Final", add={users[0]}), directory
    )

    assert ledger.snapshots is not None
    assert [s.originator_version for s in ledger.snapshots.get(group_id)] == [10]
    group = load(ledger, group_id)
    assert (group.display_name, group.version) == ("Final", 11)
