"""Many concurrent writes to one user and to one group, against the real server process.

16 threads send 10 requests each to one user (PUT of a new familyName, PATCH of displayName
or title, PATCH with If-Match), or, in the second test, to one group (PATCH adding or removing
a member each request names alone, PATCH renaming it). Each request carries its own
X-Request-Id, which the ledger records on the events it writes, so the event log tells
exactly which request wrote what. A third test reads a group while its members change.

What the design allows and no more: within one server process, writes to one resource take
turns (each reads, decides and saves in its turn), so every write answers 200 but one whose
If-Match no longer names the current version: 412. (Between processes, the ledger retries a
version conflict on fresh state, up to MAX_ATTEMPTS, then answers 409.) Never a 500.
Every 200 wrote exactly one event (each request changes something
no other request sets), a 412 wrote none; so the final version is the created one
plus the successful writes: no lost update. A write answers once the read model has it, so
its response shows its own version or a later one, exactly as the log has that version.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import GroupUpdate
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.groups import Group
from scimledger.ledger.names import NameIndex, NameKind
from scimledger.ledger.users import User
from tests.e2e.conftest import Reply, Server, call, cli, issue_token
from tests.scim import CORE_GROUP, CORE_USER, PATCH_OP

pytestmark = pytest.mark.slow

THREADS = 16
PER_THREAD = 6  # requests to the user, and as many to the group, per thread
TARGET = "target@example.com"
ATTRIBUTES = ("userName", "name", "displayName", "title")  # all the user's test ever sets


def patch_op(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def version_of(answer: Reply) -> int:
    """The version a resource answer carries; its ETag and meta.version must agree."""
    tag = answer.body["meta"]["version"]
    assert answer.header("ETag") == tag, (answer.header("ETag"), tag)
    assert tag.startswith('W/"')
    assert tag.endswith('"')
    return int(tag[3:-1])


def run_all(jobs: list[Callable[[], None]]) -> None:
    """Runs `jobs` on THREADS threads, all released at once; re-raises the first failure."""
    start = threading.Barrier(THREADS, timeout=30)
    per_thread = [jobs[n::THREADS] for n in range(THREADS)]

    def work(mine: list[Callable[[], None]]) -> None:
        start.wait()
        for job in mine:
            job()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(work, mine) for mine in per_thread]
        for future in futures:
            future.result(timeout=120)


@pytest.fixture
def ledger(server: Server) -> Iterator[Ledger]:
    """The server's ledger, opened in this process to read the event log it wrote."""
    opened = Ledger(DatabaseURL.parse(server.database))
    try:
        yield opened
    finally:
        opened.close()


def request_id(event: Any) -> str:
    return str(event.context.request.request_id)


def audited_requests(database: str, subject_id: str) -> list[str]:
    """The request ids of the audit trail's entries about one subject, oldest first."""
    listed = cli("audit", "list", "--subject", subject_id, "--format", "jsonl", database=database)
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line)["request_id"] for line in listed.stdout.splitlines()]


def user_at(ledger: Ledger, user_id: UUID, version: int) -> User:
    """The user as the log had it at `version`."""
    user: Aggregate = ledger.repository.get(user_id, version=version)
    assert isinstance(user, User)
    return user


def name_owner(ledger: Ledger, org_id: UUID, kind: NameKind, name: str) -> UUID | str | None:
    """Who holds a name in its index: an id, None once released, "never" if never claimed."""
    try:
        index: Aggregate = ledger.repository.get(ledger.name_index_id(org_id, kind, name))
    except AggregateNotFoundError:
        return "never"
    assert isinstance(index, NameIndex)
    return index.owner_id


def test_concurrent_puts_and_patches_of_one_user_lose_no_update(
    server: Server, ledger: Ledger
) -> None:
    token = issue_token(server.database)["token"]
    created = call(
        server,
        "POST",
        "/Users",
        token,
        {
            "schemas": [CORE_USER],
            "userName": TARGET,
            "name": {"givenName": "Tar", "familyName": "Get"},
            "displayName": "Target",
            "title": "Initial",
        },
        headers={"X-Request-Id": "user-create"},
    )
    assert created.status == 201
    user_id = created.body["id"]
    assert version_of(created) == 1

    # Request k: a PUT of familyName fam-k and displayName put-k (and no title), a PATCH of
    # displayName displayName-k, a PATCH of title title-k, or a PATCH of title if-k with
    # If-Match of the version a GET just read. No two requests set the same value.
    sent: dict[str, tuple[str, Any]] = {}  # request id: kind, what it sets
    answers: dict[str, Reply] = {}
    if_match_at: dict[str, int] = {}

    def job(k: int) -> Callable[[], None]:
        rid = f"user-{k}"
        kind = ("put", "displayName", "title", "if-match")[k % 4]

        def run() -> None:
            headers = {"X-Request-Id": rid}
            if kind == "put":
                value = f"fam-{k}"
                body: Any = {
                    "schemas": [CORE_USER],
                    "userName": TARGET,
                    "name": {"givenName": "Tar", "familyName": value},
                    "displayName": f"put-{k}",
                }
                sent[rid] = (kind, value)
                answers[rid] = call(
                    server, "PUT", f"/Users/{user_id}", token, body, headers=headers
                )
                return
            if kind == "if-match":
                read = call(server, "GET", f"/Users/{user_id}", token)
                assert read.status == 200
                if_match_at[rid] = version_of(read)
                headers["If-Match"] = f'W/"{if_match_at[rid]}"'
            path = "title" if kind in ("title", "if-match") else "displayName"
            value = f"{'if' if kind == 'if-match' else kind}-{k}"
            sent[rid] = (kind, value)
            body = patch_op({"op": "replace", "path": path, "value": value})
            answers[rid] = call(server, "PATCH", f"/Users/{user_id}", token, body, headers=headers)

        return run

    run_all([job(k) for k in range(THREADS * PER_THREAD)])
    assert len(answers) == THREADS * PER_THREAD

    # Exactly the answers the design allows.
    for rid, answer in answers.items():
        kind = sent[rid][0]
        if kind == "if-match":
            assert answer.status in (200, 412), (rid, answer)
        else:
            assert answer.status == 200, (rid, answer)
    succeeded = {rid for rid, answer in answers.items() if answer.status == 200}
    assert succeeded  # some writes always win

    # The log: after the creation, exactly one event per successful request, none for others.
    events = list(ledger.events.get(UUID(user_id)))
    assert isinstance(events[0], User.UserCreated)
    updates = events[1:]
    assert all(isinstance(event, User.ProfileUpdated) for event in updates)
    assert sorted(request_id(event) for event in updates) == sorted(succeeded)
    by_request = {request_id(event): event for event in updates}

    # Replayed, each event is its request's edit of the state the one before left: every
    # write saw every earlier one. An If-Match write applied on the version it named.
    states = {
        version: user_at(ledger, UUID(user_id), version).attributes
        for version in range(1, len(events) + 1)
    }
    for rid, event in by_request.items():
        kind, value = sent[rid]
        before, after = states[event.originator_version - 1], states[event.originator_version]
        if kind == "put":
            k = rid.removeprefix("user-")
            assert after == {
                "userName": TARGET,
                "name": {"givenName": "Tar", "familyName": value},
                "displayName": f"put-{k}",
            }
        else:
            assert after == {**before, "displayName" if kind == "displayName" else "title": value}
        if kind == "if-match":
            assert event.originator_version == if_match_at[rid] + 1

    # Each response: the request's own version or a later one, as the log has it.
    for rid in succeeded:
        answer = answers[rid]
        shown = version_of(answer)
        assert by_request[rid].originator_version <= shown <= len(events)
        body = answer.body
        shown_attributes = {key: body[key] for key in ATTRIBUTES if key in body}
        assert shown_attributes == states[shown]

    # The final GET: the version counts every successful write, the state is the last one.
    final = call(server, "GET", f"/Users/{user_id}", token)
    assert final.status == 200
    assert version_of(final) == 1 + len(succeeded) == len(events)
    assert {key: final.body[key] for key in ATTRIBUTES if key in final.body} == states[len(events)]

    # The audit trail has one entry per event, from the same requests; the userName index
    # still names the user, once.
    assert audited_requests(server.database, user_id) == [request_id(e) for e in events]
    assert request_id(events[0]) == "user-create"
    assert name_owner(ledger, events[0].org_id, "userName", TARGET) == UUID(user_id)


def create_users(server: Server, token: str, prefix: str, count: int) -> list[str]:
    """`count` new users, created concurrently; their ids, in order."""

    def create(n: int) -> str:
        body = {"schemas": [CORE_USER], "userName": f"{prefix}-{n}@example.com"}
        answer = call(server, "POST", "/Users", token, body)
        assert answer.status == 201, answer
        return str(answer.body["id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(create, range(count), timeout=120))


def members_of(answer: Reply) -> set[str]:
    return {member["value"] for member in answer.body.get("members", [])}


def test_concurrent_patches_of_one_group_lose_no_member_and_no_rename(
    server: Server, ledger: Ledger
) -> None:
    token = issue_token(server.database)["token"]
    # Request k adds user joining[k], removes user leaving[k] (a member from the start), or
    # renames the group to team-k.
    total = THREADS * PER_THREAD
    kinds = [("add", "remove", "rename")[k % 3] for k in range(total)]
    ids = iter(create_users(server, token, "member", total - kinds.count("rename")))
    joining = {k: next(ids) for k in range(total) if kinds[k] == "add"}
    leaving = {k: next(ids) for k in range(total) if kinds[k] == "remove"}
    body = {
        "schemas": [CORE_GROUP],
        "displayName": "Team",
        "members": [{"value": user_id} for user_id in leaving.values()],
    }
    created = call(server, "POST", "/Groups", token, body, headers={"X-Request-Id": "group-create"})
    assert created.status == 201
    group_id = created.body["id"]
    assert members_of(created) == set(leaving.values())
    assert version_of(created) == 2  # GroupCreated, MembersAdded

    answers: dict[str, Reply] = {}

    def job(k: int) -> Callable[[], None]:
        def run() -> None:
            if kinds[k] == "add":
                operation = {"op": "add", "path": "members", "value": [{"value": joining[k]}]}
            elif kinds[k] == "remove":
                operation = {"op": "remove", "path": f'members[value eq "{leaving[k]}"]'}
            else:
                operation = {"op": "replace", "path": "displayName", "value": f"team-{k}"}
            answers[f"group-{k}"] = call(
                server,
                "PATCH",
                f"/Groups/{group_id}",
                token,
                patch_op(operation),
                headers={"X-Request-Id": f"group-{k}"},
            )

        return run

    run_all([job(k) for k in range(total)])
    assert len(answers) == total

    for rid, answer in answers.items():
        assert answer.status == 200, (rid, answer)
    succeeded = {int(rid.removeprefix("group-")) for rid, a in answers.items() if a.status == 200}
    assert succeeded

    # The log: after the creation, exactly one event per successful request, none for others;
    # replayed, it gives the name and the members at every version.
    events = list(ledger.events.get(UUID(group_id)))
    assert tuple(type(event) for event in events[:2]) == (Group.GroupCreated, Group.MembersAdded)
    updates = events[2:]
    assert sorted(request_id(event) for event in updates) == sorted(f"group-{k}" for k in succeeded)
    name, members = "Team", set(leaving.values())
    states = {2: (name, frozenset(members))}
    own_version: dict[int, int] = {}
    for event in updates:
        k = int(request_id(event).removeprefix("group-"))
        own_version[k] = event.originator_version
        if kinds[k] == "add":
            assert isinstance(event, Group.MembersAdded)
            assert event.user_ids == [UUID(joining[k])]
            members.add(joining[k])
        elif kinds[k] == "remove":
            assert isinstance(event, Group.MembersRemoved)
            assert event.user_ids == [UUID(leaving[k])]
            members.remove(leaving[k])
        else:
            assert isinstance(event, Group.GroupRenamed)
            assert event.display_name == f"team-{k}"
            name = event.display_name
        states[event.originator_version] = (name, frozenset(members))

    # Each response: the request's own version or a later one, exactly as the log has it,
    # members included (read in the same snapshot as the rest).
    for k in succeeded:
        answer = answers[f"group-{k}"]
        shown = version_of(answer)
        assert own_version[k] <= shown <= len(events)
        assert answer.body["displayName"] == states[shown][0]
        assert members_of(answer) == states[shown][1], (k, shown)

    # The final GET: every successful add and remove, none of the others; the last rename.
    final = call(server, "GET", f"/Groups/{group_id}", token)
    assert final.status == 200
    assert version_of(final) == 2 + len(succeeded) == len(events)
    expected = {joining[k] for k in succeeded if kinds[k] == "add"} | {
        leaving[k] for k in leaving if k not in succeeded
    }
    assert members_of(final) == expected == states[len(events)][1]
    renames = [k for k in sorted(succeeded, key=own_version.__getitem__) if kinds[k] == "rename"]
    assert final.body["displayName"] == (f"team-{renames[-1]}" if renames else "Team")

    # The audit trail has one entry per event, from the same requests.
    assert audited_requests(server.database, group_id) == [request_id(e) for e in events]
    # The displayName index: the last name held by the group, every earlier one released,
    # and no name of a refused rename ever claimed.
    creation = events[0]
    assert isinstance(creation, Group.GroupCreated)
    org_id = creation.org_id
    assert name_owner(ledger, org_id, "displayName", final.body["displayName"]) == UUID(group_id)
    for k in range(total):
        if kinds[k] != "rename" or f"team-{k}" == final.body["displayName"]:
            continue
        owner = None if k in succeeded else "never"
        assert name_owner(ledger, org_id, "displayName", f"team-{k}") == owner, k
    assert name_owner(ledger, org_id, "displayName", "Team") == (
        None if renames else UUID(group_id)
    )


READERS = 8
TOGGLED = 8  # users the writer adds to the group and removes from it, in turn


class TornGroupRead(AssertionError):
    """Group answers showing members their version never had. It happened on PostgreSQL
    while a group was read in two statements with no common snapshot (get_group, then
    members_of, in autocommit): now one REPEATABLE READ snapshot (SQL.snapshot)."""


def group_states(ledger: Ledger, group_id: str) -> dict[int, frozenset[str]]:
    """The members of a group at each of its versions, from its events (no renames)."""
    members: set[str] = set()
    states = {1: frozenset(members)}
    for event in list(ledger.events.get(UUID(group_id)))[1:]:
        if isinstance(event, Group.MembersAdded):
            members |= {str(user_id) for user_id in event.user_ids}
        else:
            assert isinstance(event, Group.MembersRemoved)
            members -= {str(user_id) for user_id in event.user_ids}
        states[event.originator_version] = frozenset(members)
    return states


class Toggled:
    """The ledger's view of the toggled group, from the writer's own record of its members:
    the server consumes the read model, not this process, and the writer knows exactly who
    is in (it is the only one changing the group)."""

    def __init__(self, members: set[UUID]) -> None:
        self._members = members

    def catch_up(self) -> None:
        pass

    @contextmanager
    def read(self) -> Iterator[Toggled]:
        yield self

    def users_among(self, org_id: UUID, ids: list[UUID]) -> set[UUID]:
        return set(ids)

    def members_among(self, group_id: UUID, ids: list[UUID]) -> set[UUID]:
        return set(ids) & self._members

    def all_members(self, group_id: UUID) -> set[UUID]:
        return set(self._members)


# Membership changes come fast, from another process (this one, through the ledger: another
# server or the CLI does the same). The reads go on until one shows members its version
# never had, for at most READING_FOR seconds.
READING_FOR = 5.0


def test_a_group_read_during_membership_changes_shows_one_version(
    server: Server, ledger: Ledger
) -> None:
    token = issue_token(server.database)["token"]
    users = [UUID(user_id) for user_id in create_users(server, token, "toggling", TOGGLED)]
    created = call(server, "POST", "/Groups", token, {"schemas": [CORE_GROUP], "displayName": "T"})
    assert created.status == 201
    group_id = created.body["id"]
    org_id = ledger.organization_id("acme")
    assert org_id is not None
    context = CommandContext(org_id, Actor.operator("tests"), RequestInfo.local())
    stop = threading.Event()
    reads: list[tuple[int, set[str]]] = []  # the version and members each answer showed

    def toggle() -> None:
        """Adds each user in turn, then removes each, and again, until told to stop."""
        members: set[UUID] = set()
        n = 0
        while not stop.is_set():
            user_id = users[n % TOGGLED]
            joins = user_id not in members
            update = GroupUpdate(display_name="T", external_id=None)
            if joins:
                update.add_members([str(user_id)])
            else:
                update.remove_members([str(user_id)])
            ledger.update_group(context, UUID(group_id), update, Toggled(members))
            members ^= {user_id}
            n += 1

    def read() -> None:
        while not stop.is_set():
            answer = call(server, "GET", f"/Groups/{group_id}", token)
            assert answer.status == 200, answer
            reads.append((version_of(answer), members_of(answer)))

    def torn() -> list[tuple[int, set[str]]]:
        seen = list(reads)  # each read before the log is: the log has every version read
        states = group_states(ledger, group_id)
        return [(version, shown) for version, shown in seen if states[version] != shown]

    with ThreadPoolExecutor(max_workers=1 + READERS) as pool:
        futures = [pool.submit(toggle)] + [pool.submit(read) for _ in range(READERS)]
        try:
            deadline = time.monotonic() + READING_FOR
            while time.monotonic() < deadline and not torn():
                for future in futures:
                    if future.done():  # a thread failed: its error, or that it stopped
                        future.result()
                        raise AssertionError("a thread stopped before it was told to")
                time.sleep(0.5)
        finally:
            stop.set()
        for future in futures:
            future.result(timeout=60)

    if found := torn():
        raise TornGroupRead(f"{len(found)} of {len(reads)} answers (version, members): {found}")
    assert len(group_states(ledger, group_id)) > 20  # the reads ran during many changes
    assert len(reads) > 20
