"""The server killed (-9) in the middle of a create load, then started again on its database.

Eight threads POST users as fast as the server answers: mostly new userNames, some a
userName already taken (409), some an invalid body (400). Each request carries its own
X-Request-Id, which the ledger records on the events it writes. Once some creates have
succeeded, the server process gets SIGKILL; each thread goes on until a request of its own
fails, so the kill lands in the middle of requests. After a restart on the same database:

- every acknowledged (201) user is there exactly once, under the id it was given;
- no refused request (400, 409) and no request the dead server never received (connection
  refused) wrote anything;
- a request cut off without an answer wrote its user completely, once, or not at all;
- the log holds no user without its userName claim and no claim without its user;
- the read model converges on the log within a bounded wait: the listing, walked page by
  page, is exactly the users the log holds, each once, and so are GETs by id and filters.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest

from scimledger.ledger.application import Ledger
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.names import NameIndex
from scimledger.ledger.users import User
from scimledger.projections import chain
from tests.e2e.conftest import Reply, Server, call, cli_in_process, issue_token, start_server
from tests.scim import CORE_USER

pytestmark = pytest.mark.slow

THREADS = 8
TIMEOUT = 10.0  # seconds, for any one HTTP request
SEED = "seed@example.com"  # created before the load; the load's duplicates name it
KILL_AFTER_CREATED = 30  # the kill comes once this many creates were acknowledged...
KILL_NOT_BEFORE = 0.5  # ...and this many seconds of load have passed
CONVERGE_WITHIN = 10.0  # seconds after the restart


@dataclass(frozen=True)
class Outcome:
    """One request of the load and what came of it."""

    request_id: str
    user_name: str
    kind: str  # "new", "duplicate" or "invalid": what the request was
    status: int | None  # None: no HTTP answer
    refused: bool = False  # the connection was refused: the request never reached a server
    user_id: str | None = None  # the id a 201 gave


def post_user(server: Server, token: str, body: dict[str, Any], request_id: str) -> Reply:
    headers = {"X-Request-Id": request_id}
    return call(server, "POST", "/Users", token, body, headers=headers, timeout=TIMEOUT)


def send(server: Server, token: str, thread: int, n: int) -> Outcome:
    """Request n of a load thread: mostly a new user; every tenth from the fourth a duplicate
    of the seed's userName, every tenth from the eighth an invalid body."""
    request_id = f"load-{thread}-{n}"
    if n % 10 == 3:
        kind, user_name = "duplicate", SEED
        body: dict[str, Any] = {"schemas": [CORE_USER], "userName": SEED}
    elif n % 10 == 7:
        kind, user_name = "invalid", f"invalid-{thread}-{n}@example.com"
        body = {"schemas": [CORE_USER], "userName": user_name, "active": "maybe"}
    else:
        kind, user_name = "new", f"load-{thread}-{n}@example.com"
        body = {"schemas": [CORE_USER], "userName": user_name}
    reply = post_user(server, token, body, request_id)
    if reply.status != 201:
        return Outcome(request_id, user_name, kind, reply.status, refused=reply.refused)
    return Outcome(request_id, user_name, kind, reply.status, user_id=reply.body["id"])


def load_until_failure(
    server: Server, token: str, thread: int, created: list[str], give_up: threading.Event
) -> list[Outcome]:
    """Sends requests one after another until one gets no answer (or `give_up`)."""
    outcomes: list[Outcome] = []
    n = 0
    while not give_up.is_set():
        outcome = send(server, token, thread, n)
        outcomes.append(outcome)
        if outcome.status == 201:
            created.append(outcome.request_id)
        if outcome.status is None:
            return outcomes
        n += 1
    return outcomes


def kill_during_load(server: Server, token: str) -> list[Outcome]:
    """Runs the load, kills the server with SIGKILL during it; every request's outcome."""
    created: list[str] = []
    give_up = threading.Event()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [
            pool.submit(load_until_failure, server, token, thread, created, give_up)
            for thread in range(THREADS)
        ]
        started = time.monotonic()
        deadline = started + 15
        while len(created) < KILL_AFTER_CREATED or time.monotonic() - started < KILL_NOT_BEFORE:
            assert server.process.poll() is None, server.output()
            if time.monotonic() > deadline:
                give_up.set()
                raise AssertionError(f"only {len(created)} creates within 15 s")
            time.sleep(0.01)
        os.kill(server.process.pid, signal.SIGKILL)
        assert server.process.wait(timeout=10) == -signal.SIGKILL
        try:
            return [outcome for future in futures for outcome in future.result(timeout=30)]
        finally:
            give_up.set()


@dataclass(frozen=True)
class Created:
    """A user as the log holds it."""

    user_id: str
    user_name: str
    request_id: str


def logged(database: str) -> tuple[list[Created], dict[UUID, UUID], dict[UUID, UUID]]:
    """The users the log created, in order; the userName claims it holds (index id -> its
    owner); and what they should be (the index id of each user's userName -> the user)."""
    ledger = Ledger(DatabaseURL.parse(database))
    try:
        events = [
            ledger.mapper.to_domain_event(notification)
            for notification in ledger.recorder.select_notifications(start=1, limit=100_000)
        ]
        expected = {
            ledger.name_index_id(event.org_id, "userName", str(event.attributes["userName"])): (
                event.originator_id
            )
            for event in events
            if isinstance(event, User.UserCreated)
        }
    finally:
        ledger.close()
    users = [
        Created(
            str(event.originator_id),
            str(event.attributes["userName"]),
            str(event.context.request.request_id),
        )
        for event in events
        if isinstance(event, User.UserCreated)
    ]
    claims: dict[UUID, UUID] = {}
    for event in events:
        if isinstance(event, NameIndex.NameClaimed) and event.kind == "userName":
            assert event.originator_id not in claims, f"{event.originator_id} claimed twice"
            claims[event.originator_id] = event.owner_id
    assert not any(isinstance(event, NameIndex.NameReclaimed) for event in events)
    return users, claims, expected


def get(server: Server, token: str, path: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        server.base_url + path, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        error.read()
        return error.code, None


def listed(server: Server, token: str) -> tuple[list[int], list[tuple[str, str]]]:
    """Every page's totalResults, and (id, userName) of every user listed, page by page."""
    totals: list[int] = []
    users: list[tuple[str, str]] = []
    start = 1
    while True:
        status, page = get(server, token, f"/Users?startIndex={start}&count=100")
        assert status == 200, page
        totals.append(page["totalResults"])
        resources = page.get("Resources", [])
        users += [(user["id"], user["userName"]) for user in resources]
        if not resources or start + len(resources) > page["totalResults"]:
            return totals, users
        start += len(resources)


def converged(server: Server, token: str, expected: list[tuple[str, str]]) -> bool:
    totals, users = listed(server, token)
    return users == expected and set(totals) == {len(expected)}


def test_a_server_killed_during_a_create_load_keeps_every_acknowledged_user_exactly_once(
    database_url: str, servers: list[Server]
) -> None:
    servers.append(start_server(database_url))
    token = issue_token(database_url)["token"]
    seed = post_user(servers[0], token, {"userName": SEED}, "seed")
    assert seed.status == 201, seed

    outcomes = kill_during_load(servers[0], token)
    # Each thread went on until the kill: its last request is its only one without answer.
    assert len([o for o in outcomes if o.status is None]) == THREADS
    assert {o.status for o in outcomes} <= {201, 400, 409, None}, outcomes
    assert len([o for o in outcomes if o.status == 201]) >= KILL_AFTER_CREATED
    for outcome in outcomes:
        expected_status = {"new": 201, "duplicate": 409, "invalid": 400}[outcome.kind]
        assert outcome.status in (expected_status, None), outcome

    servers.append(start_server(database_url))
    restarted = servers[1]

    # The log: each userName created at most once, by at most one request, and claimed by
    # exactly the user holding it.
    users, claims, claimed_by = logged(database_url)
    assert len({user.user_name for user in users}) == len(users)
    assert len({user.request_id for user in users}) == len(users)
    assert claims == claimed_by
    assert len(claimed_by) == len(users)
    by_request = {user.request_id: user for user in users}
    assert by_request["seed"] == Created(seed.body["id"], SEED, "seed")
    for outcome in outcomes:
        written = by_request.get(outcome.request_id)
        if outcome.status == 201:
            assert written == Created(str(outcome.user_id), outcome.user_name, outcome.request_id)
        elif outcome.status is not None or outcome.refused:
            assert written is None, outcome  # refused, or never received: nothing written
        # Cut off without an answer: written (as it was sent, see below) or not at all.
    sent = {outcome.request_id: outcome for outcome in outcomes}
    for user in users:
        if user.request_id != "seed":
            assert sent[user.request_id].user_name == user.user_name, user

    # The read model converges on the log within a bounded wait.
    expected = [(user.user_id, user.user_name) for user in users]
    deadline = time.monotonic() + CONVERGE_WITHIN
    while not converged(restarted, token, expected):
        assert time.monotonic() < deadline, f"not converged:\n{restarted.output()}"
        time.sleep(0.2)
    totals, listing = listed(restarted, token)
    assert listing == expected
    assert set(totals) == {len(users)}

    # Every user by id and by filter: once. Every name the log does not hold: absent.
    def found(user_name: str) -> list[str]:
        query = urllib.parse.quote(f'userName eq "{user_name}"')
        status, page = get(restarted, token, f"/Users?filter={query}")
        assert status == 200, page
        assert page["totalResults"] == len(page.get("Resources", []))
        return [user["id"] for user in page.get("Resources", [])]

    def by_id(user: Created) -> None:
        status, fetched = get(restarted, token, f"/Users/{user.user_id}")
        assert status == 200, user
        assert (fetched["id"], fetched["userName"]) == (user.user_id, user.user_name)
        assert found(user.user_name) == [user.user_id]

    def checked_absent(outcome: Outcome) -> None:
        if outcome.request_id not in by_request and outcome.kind != "duplicate":
            assert found(outcome.user_name) == [], outcome

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(by_id, users, timeout=60))
        list(pool.map(checked_absent, outcomes, timeout=60))

    # The audit trail records the same creations, and the hash chain covers the whole log.
    trail = cli_in_process(
        "audit", "list", "--action", "user.created", "--format", "jsonl", database=database_url
    )
    assert trail.returncode == 0, trail.stderr
    audited = [json.loads(line) for line in trail.stdout.splitlines()]
    assert [(e["subject_id"], e["request_id"]) for e in audited] == [
        (user.user_id, user.request_id) for user in users
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
    assert restarted.stop() == 0, restarted.output()
    assert "Traceback" not in restarted.output(), restarted.output()
