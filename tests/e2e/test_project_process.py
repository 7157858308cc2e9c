"""`scimledger project`: the read models kept up to date by a process of their own.

Real processes: one killed (-9) in the middle of a backlog loses no event and applies none
twice; a second one stands by and takes over when the first dies; and `serve --projections
external` answers its writes once that process applied them (read-your-writes across
processes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

import pytest
from eventsourcing.persistence import PersistenceError

from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewUser
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.schemas import CORE_USER
from scimledger.projections import audit, chain, scim
from scimledger.projections.registry import REBUILDABLE, all_projections
from scimledger.projections.runner import Runner
from scimledger.projections.sql import SQL
from tests.benchmarks.bench_audit import fill
from tests.conftest import drop_postgres_database, issue, new_postgres_database
from tests.e2e.conftest import SCIMLEDGER, Server, call, issue_token, start_server
from tests.integration.test_rebuild import NAMES, TABLES_OF, Dump, dump

pytestmark = pytest.mark.slow

PROJECTIONS = [projection.name for projection in all_projections()]
ACTOR = Actor(kind="token", id="t-1", name="Okta")
# Events: a `project` process applies them in batches of 1000 (Runner's default), so each
# projection needs six batches: the kill lands after the first and has five more to land in.
BACKLOG = 6_000
# The reference build's batches end anywhere but where the live ones do (97 is prime: none of
# its ends is a multiple of 1000), 60-odd times across the log.
REFERENCE_BATCH = 97


@dataclass
class Projecting:
    """A `scimledger project` process; its output goes to a file."""

    process: subprocess.Popen[str]
    log: IO[str]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def consuming(self) -> set[str]:
        """The projections it said it consumes."""
        return {name for name in PROJECTIONS if f"consuming {name} from position" in self.output()}

    def standing_by(self) -> set[str]:
        return {
            name
            for name in PROJECTIONS
            if f"another process consumes {name}; standing by" in self.output()
        }


@pytest.fixture
def start_project() -> Iterator[Callable[[str], Projecting]]:
    """Starts `scimledger project` processes; kills those still running at the end."""
    started: list[Projecting] = []

    def start(database: str) -> Projecting:
        # Appended to: the child shares the file's offset with this process, whose reads
        # (output(), from the start) would otherwise put the child's next line over the
        # first ones (a "standing by" line was lost that way).
        log = tempfile.TemporaryFile("a+")  # noqa: SIM115 (closed below)
        process = subprocess.Popen(
            [SCIMLEDGER, "project", "--database", database],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(Projecting(process, log))
        return started[-1]

    try:
        yield start
    finally:
        for item in started:
            if item.process.poll() is None:
                item.process.kill()
                item.process.wait(timeout=10)
            item.log.close()


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    ledger = Ledger(DatabaseURL.parse(database_url))
    try:
        yield ledger
    finally:
        ledger.close()


def head(ledger: Ledger) -> int:
    return ledger.recorder.max_notification_id() or 0


def positions(ledger: Ledger) -> dict[str, int]:
    """Each projection's stored position; {} before any projection ran."""
    try:
        with SQL(ledger).transaction(commit=False) as cursor:
            cursor.execute("SELECT name, position FROM projection_tracking")
            return {str(row["name"]): int(row["position"]) for row in cursor.fetchall()}
    except PersistenceError:
        return {}


def all_at(ledger: Ledger, position: int) -> bool:
    at = positions(ledger)
    return all(at.get(name) == position for name in PROJECTIONS)


def eventually(check: Callable[[], bool], timeout: float, what: str, *shown: Projecting) -> None:
    """Waits until `check()` holds; fails after `timeout`, showing the processes' output."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            outputs = "".join(f"\n--- output:\n{process.output()}" for process in shown)
            raise AssertionError(f"not within {timeout} s: {what}{outputs}")
        time.sleep(0.02)


def context_for(ledger: Ledger) -> CommandContext:
    if ledger.organization_id("acme") is None:
        issue(ledger)
    org_id = ledger.organization_id("acme")
    assert org_id is not None
    return CommandContext(org_id=org_id, actor=ACTOR, request=RequestInfo("r-1"))


def create_users(ledger: Ledger, prefix: str, count: int) -> None:
    context = context_for(ledger)
    for n in range(count):
        ledger.create_user(context, NewUser(attributes={"userName": f"{prefix}{n}@example.com"}))


def reference(ledger: Ledger) -> Dump:
    """Each rebuildable read model built from the whole log in one uninterrupted run, into
    tables of their own; their rows, under the live tables' names."""
    tables: list[str] = []
    for name in NAMES:
        Runner(ledger, REBUILDABLE[name]("reference_"), batch_size=REFERENCE_BATCH).run_once()
        tables += TABLES_OF[name]
    return dump(ledger, "reference_", tables)


# 5. Killed in the middle of a backlog


def kill_while_applying(process: Projecting, ledger: Ledger, name: str, end: int) -> dict[str, int]:
    """Kills the process (-9) once projection `name` applied part of the log, not all of
    it; returns the stored positions then."""
    deadline = time.monotonic() + 60
    # Its positions are polled (every 2 ms: a batch must not slip by) only once it says it
    # consumes `name`: before that (its start, the projections it catches up first) that
    # polling took CPU from the process itself and from the other tests.
    starting = f"consuming {name} from position"
    while starting not in process.output():
        assert process.process.poll() is None, process.output()
        assert time.monotonic() < deadline, f"{name}: not consumed within 60 s:\n{process.output()}"
        time.sleep(0.02)
    while True:
        assert process.process.poll() is None, process.output()
        at = positions(ledger).get(name, 0)
        assert at < end, f"{name} applied the whole backlog before it could be killed"
        if at > 0:
            process.kill()
            # A commit it sent just before it died may still land (PostgreSQL): let it.
            time.sleep(0.3)
            break
        assert time.monotonic() < deadline, f"{name}: no batch within 60 s:\n{process.output()}"
        time.sleep(0.002)
    killed_at = positions(ledger)
    assert 0 < killed_at[name] < end, killed_at
    return killed_at


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # CI time: the same
# exactly-once code (tracking row and rows in one transaction) on both; PostgreSQL runs it
def test_a_killed_project_process_loses_no_event_and_applies_none_twice(
    database_url: str, ledger: Ledger, start_project: Callable[[str], Projecting]
) -> None:
    fill(ledger, context_for(ledger), BACKLOG)
    end = head(ledger)
    assert end > BACKLOG * 0.9

    # Killed while applying the SCIM read model (the first it catches up)...
    first = start_project(database_url)
    killed = kill_while_applying(first, ledger, scim.NAME, end)
    assert "consuming scim_read_model_v6 from position 0" in first.output()
    # ...then, started again, while applying the audit trail (the third).
    second = start_project(database_url)
    killed_again = kill_while_applying(second, ledger, audit.NAME, end)
    assert f"consuming scim_read_model_v6 from position {killed[scim.NAME]}" in second.output()

    third = start_project(database_url)
    eventually(lambda: all_at(ledger, end), 60, f"every projection at {end}", third)
    assert f"consuming {audit.NAME} from position {killed_again[audit.NAME]}" in third.output()
    assert third.stop() == 0, third.output()
    assert "Traceback" not in third.output(), third.output()

    live = dump(ledger, tables=[table for name in NAMES for table in TABLES_OF[name]])
    assert len(live["scim_users"]) == BACKLOG // 4 + 1
    # Three entries a user; four more from issue() and fill()'s watched user.
    assert len(live["audit_entries"]) == BACKLOG // 4 * 3 + 4
    assert live == reference(ledger)
    verification = chain.verify(ledger)
    assert verification.ok, verification.problem
    assert verification.checked == end


# 6. A second process stands by, then takes over


def test_a_second_project_process_stands_by_and_takes_over_when_the_first_is_killed(
    database_url: str, ledger: Ledger, start_project: Callable[[str], Projecting]
) -> None:
    create_users(ledger, "before", 3)
    # The second starts once the first is up: two processes starting at the same moment on a
    # new PostgreSQL database can fail (see test_followers.py, "Processes starting together").
    one = start_project(database_url)
    eventually(lambda: one.consuming() == set(PROJECTIONS), 15, "the first consuming", one)
    two = start_project(database_url)
    eventually(lambda: two.standing_by() == set(PROJECTIONS), 15, "the second standing by", two)
    # For each projection, exactly one consumes and the other stands by.
    assert two.consuming() == set(), two.output()
    assert one.standing_by() == set(), one.output()
    eventually(lambda: all_at(ledger, head(ledger)), 10, "the backlog applied", one)

    # Across lock retries (every 2 s), nobody takes a lock held by a live process.
    time.sleep(2.5)
    create_users(ledger, "during", 2)
    eventually(lambda: all_at(ledger, head(ledger)), 10, "applied by the first", one, two)
    assert two.consuming() == set(), two.output()
    assert two.process.poll() is None, two.output()

    # The consumer dies; the other takes over every projection and applies what follows.
    one.kill()
    create_users(ledger, "after", 3)
    end = head(ledger)
    eventually(lambda: all_at(ledger, end), 10, f"every projection at {end} after the kill", two)
    assert two.consuming() == set(PROJECTIONS), two.output()
    assert two.stop() == 0, two.output()
    assert "stopped on SIGTERM" in two.output()
    assert "Traceback" not in two.output(), two.output()


# 7. serve --projections external, with `scimledger project` beside it


def test_an_external_projection_process_gives_read_your_writes_and_stops_on_sigterm(
    start_project: Callable[[str], Projecting],
) -> None:
    url = new_postgres_database()
    server: Server | None = None
    try:
        projecting = start_project(url)
        ready = set(PROJECTIONS)
        eventually(lambda: projecting.consuming() == ready, 15, "consuming", projecting)
        server = start_server(url, "--projections", "external")
        token = issue_token(url)["token"]
        for n in range(3):
            name = f"reader{n}@example.com"
            created = call(
                server, "POST", "/Users", token, {"schemas": [CORE_USER], "userName": name}
            )
            assert created.status == 201
            query = urllib.parse.quote(f'userName eq "{name}"')
            found = call(server, "GET", f"/Users?filter={query}", token)
            assert found.status == 200
            assert found.body["totalResults"] == 1, found.body
            assert found.body["Resources"][0]["id"] == created.body["id"]

        assert projecting.stop() == 0, projecting.output()
        assert "stopped on SIGTERM" in projecting.output()
        assert "Traceback" not in projecting.output(), projecting.output()
        # The server never consumed: it only waited for the project process.
        assert "consuming" not in server.output(), server.output()
    finally:
        if server is not None:
            if server.process.poll() is None:
                server.stop()
            server.log.close()
        drop_postgres_database(url)
