"""The server killed (-9) in the middle of a load of group membership changes, then started
again on its database.

Two groups and a few hundred users are created first. Then eight threads PATCH the two
groups as fast as the server answers: each PATCH either adds a member (a user no other request
ever adds) or removes a member that the same thread added earlier and saw acknowledged. Each
request carries its own X-Request-Id, which the ledger records on the events it writes. Once
some PATCHes have succeeded, the server process gets SIGKILL; each thread goes on until a
request of its own fails, so the kill lands in the middle of requests. After a restart on the
same database:

- every acknowledged (200) PATCH is in the log exactly once, as the change it asked for, and
  its effect holds unless a later PATCH of the same thread undid it: an acknowledged one, or
  one cut off that made it into the log;
- a PATCH cut off without an answer is in the log once or not at all (its effect holds if it
  is), and one the dead server never received (connection refused) is not in it;
- replaying the log's membership events never adds a member twice nor removes a non-member;
- the read model converges on the log within a bounded wait: each group's members and
  version, the listing, the groups of each user (by filter and on the user) are what the
  log's events make them;
- the restarted server goes on changing the groups, the audit trail records the same
  changes, and the hash chain covers the whole log.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewUser
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.groups import Group
from scimledger.projections import chain
from tests.e2e.conftest import Server, call, cli_in_process, issue_token, start_server
from tests.scim import PATCH_OP

pytestmark = pytest.mark.slow

THREADS = 8
USERS_PER_THREAD = 24  # users only that thread adds, each once
SPARE_USERS = 8  # never touched by the load: added after the restart
TIMEOUT = 10.0  # seconds, for any one HTTP request
KILL_AFTER_CHANGED = 30  # the kill comes once this many PATCHes were acknowledged...
KILL_NOT_BEFORE = 0.5  # ...and this many seconds of load have passed
CONVERGE_WITHIN = 10.0  # seconds after the restart


@dataclass(frozen=True)
class Outcome:
    """One PATCH of the load and what came of it."""

    request_id: str
    op: str  # "add" or "remove"
    group_id: str
    user_id: str
    status: int | None  # None: no HTTP answer
    refused: bool = False  # the connection was refused: the request never reached a server
    members: frozenset[str] = frozenset()  # the group's members as a 200 returned them


def send(
    server: Server, token: str, request_id: str, *, op: str, group_id: str, user_id: str
) -> Outcome:
    """One PATCH: adds `user_id` to the group or removes it from it."""
    if op == "add":
        operation: dict[str, Any] = {"op": "add", "path": "members", "value": [{"value": user_id}]}
    else:
        operation = {"op": "remove", "path": f'members[value eq "{user_id}"]'}
    body = {"schemas": [PATCH_OP], "Operations": [operation]}
    reply = call(
        server,
        "PATCH",
        f"/Groups/{group_id}",
        token,
        body,
        headers={"X-Request-Id": request_id},
        timeout=TIMEOUT,
    )
    if reply.status != 200:
        return Outcome(request_id, op, group_id, user_id, reply.status, refused=reply.refused)
    members = frozenset(member["value"] for member in reply.body.get("members", []))
    return Outcome(request_id, op, group_id, user_id, reply.status, members=members)


def load_until_failure(
    server: Server,
    token: str,
    thread: int,
    *,
    users: list[str],
    groups: list[str],
    changed: list[str],
    give_up: threading.Event,
) -> list[Outcome]:
    """Sends PATCHes one after another until one gets no answer (or `give_up`): every third
    removes the oldest member this thread added and saw acknowledged, the others add the
    thread's next user, to the two groups in turn."""
    outcomes: list[Outcome] = []
    fresh = iter(enumerate(users))
    members: list[tuple[str, str]] = []  # (group, user) added with a 200, not yet removed
    n = 0
    while not give_up.is_set():
        if n % 3 == 2 and members:
            group_id, user_id = members.pop(0)
            op = "remove"
        else:
            next_user = next(fresh, None)
            if next_user is None:
                raise AssertionError(f"thread {thread} ran out of users before the kill")
            k, user_id = next_user
            group_id, op = groups[(thread + k) % len(groups)], "add"
        request_id = f"load-{thread}-{n}"
        outcome = send(server, token, request_id, op=op, group_id=group_id, user_id=user_id)
        outcomes.append(outcome)
        if outcome.status != 200:
            return outcomes  # no answer; any other answer fails the test
        changed.append(outcome.request_id)
        if op == "add":
            members.append((group_id, user_id))
        n += 1
    return outcomes


def kill_during_load(
    server: Server, token: str, users: list[list[str]], groups: list[str]
) -> list[Outcome]:
    """Runs the load, kills the server with SIGKILL during it; every request's outcome."""
    changed: list[str] = []
    give_up = threading.Event()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [
            pool.submit(
                load_until_failure,
                server,
                token,
                thread,
                users=users[thread],
                groups=groups,
                changed=changed,
                give_up=give_up,
            )
            for thread in range(THREADS)
        ]
        started = time.monotonic()
        deadline = started + 15
        while len(changed) < KILL_AFTER_CHANGED or time.monotonic() - started < KILL_NOT_BEFORE:
            assert server.process.poll() is None, server.output()
            if time.monotonic() > deadline:
                give_up.set()
                raise AssertionError(f"only {len(changed)} PATCHes within 15 s")
            if stopped := [future.result() for future in futures if future.done()]:
                give_up.set()  # a thread ran into an error answer (or out of users): why
                raise AssertionError(f"stopped before the kill: {[o[-1] for o in stopped]}")
            time.sleep(0.01)
        os.kill(server.process.pid, signal.SIGKILL)
        assert server.process.wait(timeout=10) == -signal.SIGKILL
        try:
            return [outcome for future in futures for outcome in future.result(timeout=30)]
        finally:
            give_up.set()


@dataclass(frozen=True)
class Change:
    """A membership event of the log."""

    position: int
    op: str  # "add" or "remove"
    group_id: str
    user_ids: tuple[str, ...]
    request_id: str
    version: int  # the group's version the event made


def request_of(event: object) -> str | None:
    """The id of the request that wrote `event`, if it was written for a command."""
    context = getattr(event, "context", None)
    if context is None:
        return None
    assert isinstance(context, CommandContext), event
    return str(context.request.request_id)


def logged(database: str) -> tuple[list[Change], Counter[str]]:
    """The log's membership changes, in order, and how many events each request wrote."""
    ledger = Ledger(DatabaseURL.parse(database))
    try:
        notifications = ledger.recorder.select_notifications(start=1, limit=100_000)
        events = [
            (notification.id, ledger.mapper.to_domain_event(notification))
            for notification in notifications
        ]
    finally:
        ledger.close()
    written: Counter[str] = Counter(
        request_id for _, event in events if (request_id := request_of(event)) is not None
    )
    changes = [
        Change(
            position,
            "add" if isinstance(event, Group.MembersAdded) else "remove",
            str(event.originator_id),
            tuple(str(user_id) for user_id in event.user_ids),
            str(event.context.request.request_id),
            event.originator_version,
        )
        for position, event in events
        if isinstance(event, Group.MembersAdded | Group.MembersRemoved)
    ]
    return changes, written


def replayed(changes: list[Change], groups: list[str]) -> dict[str, set[str]]:
    """Each group's members as the log's changes make them; each change an actual one."""
    members: dict[str, set[str]] = {group_id: set() for group_id in groups}
    for change in changes:
        for user_id in change.user_ids:
            if change.op == "add":
                assert user_id not in members[change.group_id], change
                members[change.group_id].add(user_id)
            else:
                assert user_id in members[change.group_id], change
                members[change.group_id].remove(user_id)
    return members


def get(server: Server, token: str, path: str) -> Any:
    reply = call(server, "GET", path, token, timeout=TIMEOUT)
    assert reply.status == 200, (path, reply)
    return reply.body


def read(server: Server, token: str, group_id: str) -> tuple[list[str], str]:
    """The group's member ids, as GET returns them, and its version."""
    group = get(server, token, f"/Groups/{group_id}")
    return [member["value"] for member in group.get("members", [])], group["meta"]["version"]


def listed(server: Server, token: str) -> dict[str, list[str]]:
    """Every group the listing holds, with its member ids."""
    page = get(server, token, "/Groups?startIndex=1&count=100")
    assert page["totalResults"] == len(page.get("Resources", [])), page
    return {
        group["id"]: [member["value"] for member in group.get("members", [])]
        for group in page.get("Resources", [])
    }


def converged(
    server: Server, token: str, members: dict[str, set[str]], versions: dict[str, int]
) -> bool:
    for group_id, expected in members.items():
        ids, version = read(server, token, group_id)
        if sorted(ids) != sorted(expected) or version != f'W/"{versions[group_id]}"':
            return False
    return {group_id: sorted(ids) for group_id, ids in listed(server, token).items()} == {
        group_id: sorted(expected) for group_id, expected in members.items()
    }


def create_users(database: str, issued: dict[str, Any], count: int) -> list[str]:
    """`count` users (u0@example.com, ...) of the token's organization, as the token's
    holder, each created by a request of its own (setup-u0, ...); their ids."""
    ledger = Ledger(DatabaseURL.parse(database))
    try:
        org_id = ledger.organization_id(issued["org"])
        assert org_id is not None
        actor = Actor(kind="token", id=str(issued["id"]), name=str(issued["name"]))
        return [
            str(
                ledger.create_user(
                    CommandContext(org_id, actor, RequestInfo(f"setup-u{i}")),
                    NewUser(attributes={"userName": f"u{i}@example.com"}),
                ).id
            )
            for i in range(count)
        ]
    finally:
        ledger.close()


def test_a_server_killed_during_a_membership_load_keeps_every_acknowledged_change_once(
    database_url: str, servers: list[Server]
) -> None:
    issued = issue_token(database_url)
    token = issued["token"]
    # The users through the ledger, before the server starts: over HTTP they cost the test
    # seconds, and only the load's PATCHes are about the server.
    count = THREADS * USERS_PER_THREAD + SPARE_USERS
    users = create_users(database_url, issued, count)
    servers.append(start_server(database_url))

    def create(path: str, body: dict[str, Any], request_id: str) -> str:
        reply = call(servers[0], "POST", path, token, body, headers={"X-Request-Id": request_id})
        assert reply.status == 201, reply
        return str(reply.body["id"])

    groups = [
        create("/Groups", {"displayName": name}, f"setup-{name}") for name in ("crash-a", "crash-b")
    ]
    by_thread = [users[t * USERS_PER_THREAD : (t + 1) * USERS_PER_THREAD] for t in range(THREADS)]
    spare = users[THREADS * USERS_PER_THREAD :]

    outcomes = kill_during_load(servers[0], token, by_thread, groups)
    # Each thread went on until the kill: its last request is its only one without answer.
    assert {o.status for o in outcomes} <= {200, None}, [o for o in outcomes if o.status]
    assert len([o for o in outcomes if o.status is None]) == THREADS
    assert len([o for o in outcomes if o.status == 200]) >= KILL_AFTER_CHANGED
    assert len({o.request_id for o in outcomes}) == len(outcomes)
    # Each 200 answered with the group as the change left it (other users' changes aside).
    for outcome in outcomes:
        if outcome.status == 200:
            assert (outcome.user_id in outcome.members) == (outcome.op == "add"), outcome

    servers.append(start_server(database_url))
    restarted = servers[1]

    # The log: each acknowledged PATCH once, as it was asked; one cut off once or not at all.
    changes, written = logged(database_url)
    by_request = {change.request_id: change for change in changes}
    assert len(by_request) == len(changes)  # one membership event per request at most
    sent = {outcome.request_id: outcome for outcome in outcomes}
    for change in changes:
        outcome = sent[change.request_id]  # no membership changes but the load's
        assert change == Change(
            change.position,
            outcome.op,
            outcome.group_id,
            (outcome.user_id,),
            outcome.request_id,
            change.version,
        ), outcome
    for outcome in outcomes:
        if outcome.status == 200:
            assert written[outcome.request_id] == 1, outcome
            assert outcome.request_id in by_request, outcome
        elif outcome.refused:
            assert written[outcome.request_id] == 0, outcome  # never received
        else:
            assert written[outcome.request_id] <= 1, outcome  # cut off: once or not at all
    for group_id in groups:
        made = [change.version for change in changes if change.group_id == group_id]
        assert made == list(range(2, len(made) + 2)), (group_id, made)

    # Replaying the log: every acknowledged change holds unless the same thread's later PATCH
    # undid it (an acknowledged removal, or one cut off that made it into the log); a change
    # cut off holds if, and only if, it made it into the log.
    members = replayed(changes, groups)
    undone = {
        (o.group_id, o.user_id) for o in outcomes if o.op == "remove" and o.request_id in by_request
    }
    for outcome in outcomes:
        present = outcome.user_id in members[outcome.group_id]
        if outcome.request_id in by_request:
            expected = outcome.op == "add" and (outcome.group_id, outcome.user_id) not in undone
        else:  # cut off before it was written: the member is as the thread had left it
            expected = outcome.op == "remove"
        assert present == expected, outcome
    assert not any(user_id in ids for user_id in spare for ids in members.values())

    # The read model converges on the log within a bounded wait.
    versions = {
        group_id: 1 + len([c for c in changes if c.group_id == group_id]) for group_id in groups
    }
    deadline = time.monotonic() + CONVERGE_WITHIN
    while not converged(restarted, token, members, versions):
        assert time.monotonic() < deadline, f"not converged:\n{restarted.output()}"
        time.sleep(0.2)
    for group_id in groups:
        ids, version = read(restarted, token, group_id)
        assert len(ids) == len(set(ids))
        assert set(ids) == members[group_id]
        assert version == f'W/"{versions[group_id]}"'

    # Every user's groups, by filter and on the user: those the log makes it a member of.
    def groups_of(user_id: str) -> None:
        expected = sorted(group_id for group_id in groups if user_id in members[group_id])
        query = urllib.parse.quote(f'members[value eq "{user_id}"]')
        page = get(restarted, token, f"/Groups?filter={query}")
        assert page["totalResults"] == len(page.get("Resources", []))
        assert sorted(group["id"] for group in page.get("Resources", [])) == expected, user_id
        user = get(restarted, token, f"/Users/{user_id}")
        assert sorted(group["value"] for group in user.get("groups", [])) == expected, user_id

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(groups_of, users, timeout=60))

    # The restarted server goes on changing both groups, from the versions the log holds.
    for n, (group_id, user_id) in enumerate(zip(groups, spare, strict=False)):
        after = send(restarted, token, f"after-{n}", op="add", group_id=group_id, user_id=user_id)
        assert after.status == 200, (after, restarted.output())
        assert after.members == frozenset(members[group_id] | {user_id})
        members[group_id].add(user_id)
        versions[group_id] += 1
    changes, written = logged(database_url)
    assert replayed(changes, groups) == members
    for group_id in groups:
        ids, version = read(restarted, token, group_id)
        assert (set(ids), version) == (members[group_id], f'W/"{versions[group_id]}"')

    # The audit trail records the same changes, and the hash chain covers the whole log.
    trail = cli_in_process(
        "audit",
        "list",
        "--action",
        "group.members_added",
        "--action",
        "group.members_removed",
        "--format",
        "jsonl",
        database=database_url,
    )
    assert trail.returncode == 0, trail.stderr
    audited = [json.loads(line) for line in trail.stdout.splitlines()]
    assert [(e["position"], e["subject_id"], e["request_id"]) for e in audited] == [
        (change.position, change.group_id, change.request_id) for change in changes
    ]
    ledger = Ledger(DatabaseURL.parse(database_url))
    try:
        deadline = time.monotonic() + CONVERGE_WITHIN
        while not (verification := chain.verify(ledger)).ok:
            assert time.monotonic() < deadline, verification.problem
            time.sleep(0.2)
        assert verification.head_position == ledger.recorder.max_notification_id()
    finally:
        ledger.close()
    verified = cli_in_process("ledger", "verify", database=database_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert restarted.stop() == 0, restarted.output()
    assert "Traceback" not in restarted.output(), restarted.output()
