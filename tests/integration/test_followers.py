"""Followers: one consumer per projection (a lock), the others watch its stored position.

In one process, on real databases: the consumer lock (a PostgreSQL advisory lock, a SQLite
`flock`), two followers of one projection where exactly one applies events and the other
takes over when it stops, a watcher that never applies anything, and on PostgreSQL the
LISTEN connection: it wakes a follower at once, and one that went silent is noticed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewUser
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import SETUP_LOCK_KEY, DatabaseURL
from scimledger.ledger.listener import LogListener
from scimledger.projections.follower import ConsumerLock, Follower
from scimledger.projections.runner import TRACKING_DDL, Runner
from scimledger.projections.scim import NAME as SCIM
from scimledger.projections.scim_projection import ScimProjection
from scimledger.projections.sql import SQL
from tests.conftest import issue

ACTOR = Actor(kind="token", id="t-1", name="Okta")
FOLLOWER_LOG = "scimledger.projections.follower"


def head(ledger: Ledger) -> int:
    return ledger.recorder.max_notification_id() or 0


def context_for(ledger: Ledger, org: str = "acme") -> CommandContext:
    if ledger.organization_id(org) is None:
        issue(ledger, org=org)
    org_id = ledger.organization_id(org)
    assert org_id is not None
    return CommandContext(org_id=org_id, actor=ACTOR, request=RequestInfo("r-1"))


def create_user(ledger: Ledger, context: CommandContext, user_name: str) -> int:
    """Creates a user (one transaction); returns the log position of its last event."""
    written = ledger.create_user(context, NewUser(attributes={"userName": user_name}))
    assert written.position is not None
    return written.position


def user_names(ledger: Ledger) -> set[str]:
    with SQL(ledger).transaction(commit=False) as cursor:
        cursor.execute("SELECT user_name_norm FROM scim_users")
        return {str(row["user_name_norm"]) for row in cursor.fetchall()}


def eventually(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Waits until `check()` holds; returns the seconds it took, fails after `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture
def database(database_url: str) -> DatabaseURL:
    return DatabaseURL.parse(database_url)


@pytest.fixture
def ledgers(database: DatabaseURL) -> Iterator[tuple[Ledger, Ledger]]:
    """Two Ledger objects on one database, as two processes would have."""
    first = Ledger(database)
    second = Ledger(database)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


@pytest.fixture
def postgres_ledgers(postgres: DatabaseURL) -> Iterator[tuple[Ledger, Ledger]]:
    first = Ledger(postgres)
    second = Ledger(postgres)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def advisory_locks(database: DatabaseURL) -> list[tuple[int, int, int, bool]]:
    """The advisory locks held in the database: (classid, objid, objsubid, granted)."""
    with psycopg.connect(**database.connection_kwargs(), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT classid::bigint, objid::bigint, objsubid::int, granted FROM pg_locks"
            " WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
    return [(int(a), int(b), int(c), bool(d)) for a, b, c, d in rows]


def lock_parts(key: int) -> tuple[int, int, int, bool]:
    """How pg_locks shows a granted bigint advisory lock: its high and low 32 bits, 1."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return (unsigned >> 32, unsigned & 0xFFFF_FFFF, 1, True)


def follower(ledger: Ledger, listener: LogListener | None = None, **options: Any) -> Follower:
    settings: dict[str, Any] = {
        "poll_interval": 0.05,
        "listening_poll_interval": 0.5,
        "retry_lock_every": 0.2,
    }
    settings.update(options)
    return Follower(ledger, ScimProjection(), listener=listener, **settings)


# 1. The consumer lock


def test_one_consumer_lock_per_name_until_it_is_released(database: DatabaseURL) -> None:
    first = ConsumerLock(database, "projection_a")
    second = ConsumerLock(database, "projection_a")
    other = ConsumerLock(database, "projection_b")
    try:
        assert first.try_acquire()
        assert first.held()
        assert first.try_acquire()  # again: still its own
        assert not second.try_acquire()
        assert not second.held()
        assert other.try_acquire()  # another name does not conflict
        first.release()
        assert not first.held()
        assert second.try_acquire()
        assert not first.try_acquire()
        assert other.held()
        if database.kind == "sqlite":
            path = f"{os.path.abspath(database.path)}.projection_a.consumer"
            assert os.path.exists(path)
    finally:
        for lock in (first, second, other):
            lock.release()
    again = ConsumerLock(database, "projection_a")
    try:
        assert again.try_acquire()  # released by every holder: free
    finally:
        again.release()


def test_the_postgresql_lock_is_an_advisory_lock_on_a_stable_64_bit_key(
    postgres: DatabaseURL,
) -> None:
    lock = ConsumerLock(postgres, "scim_read_model_v6")
    digest = hashlib.sha256(b"scimledger.projection:scim_read_model_v6").digest()
    assert lock.key == int.from_bytes(digest[:8], "big", signed=True)
    assert -(2**63) <= lock.key < 2**63
    assert lock.key == ConsumerLock(postgres, "scim_read_model_v6").key
    assert lock.key != ConsumerLock(postgres, "audit_trail_v2").key
    assert lock_parts(lock.key) not in advisory_locks(postgres)
    try:
        assert lock.try_acquire()
        assert advisory_locks(postgres).count(lock_parts(lock.key)) == 1
    finally:
        lock.release()
    # Closing its connection ends the session, and the lock with it (the backend may take
    # a moment to go).
    eventually(lambda: lock_parts(lock.key) not in advisory_locks(postgres), 5, "the lock released")


# 2. Two followers of one projection


def test_one_of_two_followers_consumes_and_the_other_takes_over_when_it_stops(
    ledgers: tuple[Ledger, Ledger],
) -> None:
    one, two = ledgers
    context = context_for(one)
    listeners = [LogListener(one), LogListener(two)]
    followers = [follower(one, listeners[0]), follower(two, listeners[1])]
    try:
        for listener in listeners:
            listener.start()
        for each in followers:
            each.start()
        # Exactly one active, and it stays so across several lock retries.
        for _ in range(20):
            assert [f.active for f in followers].count(True) == 1
            time.sleep(0.05)
        [active] = [f for f in followers if f.active]
        [watching] = [f for f in followers if not f.active]

        position = create_user(two, context, "first@example.com")
        watching.wait_for(position, timeout=10)  # returns once the consumer applied it
        assert watching.runner.stored_position() >= position
        assert "first@example.com" in user_names(one)
        eventually(
            lambda: watching.runner.stored_position() == head(one),
            5,
            "the stored position at the head",
        )
        assert not watching.active

        active.stop()
        assert not active.active
        waited = eventually(lambda: watching.active, 5, "the other follower takes over")
        assert waited < 3
        position = create_user(one, context, "second@example.com")
        # Applied by the new consumer's own thread: nobody calls wait_for or catch_up.
        eventually(lambda: watching.runner.stored_position() >= position, 5, "applied")
        assert {"first@example.com", "second@example.com"} <= user_names(two)
        assert watching.runner.stored_position() == head(one)
    finally:
        for each in followers:
            each.stop()
        for listener in listeners:
            listener.stop()


def test_a_wait_on_a_watcher_returns_once_it_took_over_from_the_stopped_consumer(
    ledgers: tuple[Ledger, Ledger],
) -> None:
    """A write waiting on a watcher while its process takes over still returns."""
    one, two = ledgers
    context = context_for(one)
    first = follower(one)
    second = follower(two, retry_lock_every=0.3)
    try:
        first.start()
        second.start()
        assert first.active
        assert not second.active
        first.stop()
        position = create_user(two, context, "late@example.com")
        second.wait_for(position, timeout=10)
        assert second.runner.stored_position() >= position
        assert "late@example.com" in user_names(two)
    finally:
        first.stop()
        second.stop()


def test_a_consumer_whose_lock_connection_is_lost_takes_the_lock_again(
    postgres_ledgers: tuple[Ledger, Ledger], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=FOLLOWER_LOG)
    ledger, writer = postgres_ledgers
    context = context_for(writer)
    consumer = follower(ledger)
    try:
        consumer.start()
        assert consumer.active
        parts = lock_parts(consumer.lock.key)
        with psycopg.connect(**ledger.database.connection_kwargs(), autocommit=True) as admin:
            [(pid,)] = admin.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = %s"
                " AND objid::bigint = %s AND objsubid = %s AND granted"
                # Advisory locks are per database; pg_locks shows the whole cluster's.
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                parts[:3],
            ).fetchall()
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        eventually(lambda: "lost the connection holding" in caplog.text, 5, "the lost lock noticed")
        # Nobody else holds it: it takes it again, on a new connection, and goes on.
        eventually(lambda: advisory_locks(ledger.database).count(parts) == 1, 5, "retaken")
        eventually(lambda: consumer.active, 5, "active again")
        position = create_user(writer, context, "after-loss@example.com")
        eventually(lambda: consumer.runner.stored_position() >= position, 5, "applied")
        assert caplog.text.count("consuming scim_read_model_v6") == 2
    finally:
        consumer.stop()


# 3. A watcher never applies anything


def test_a_watching_follower_never_applies_and_its_wait_times_out_without_a_consumer(
    ledgers: tuple[Ledger, Ledger],
) -> None:
    one, _ = ledgers
    context = context_for(one)
    watcher = follower(one, consume=False)
    try:
        watcher.start()
        assert not watcher.active
        position = create_user(one, context, "nobody@example.com")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            watcher.wait_for(position, timeout=0.5)
        assert time.monotonic() - started < 5
        time.sleep(0.6)  # several lock retry periods: it never tries
        assert not watcher.active
        assert watcher.runner.stored_position() == 0
        assert user_names(one) == set()
        free = ConsumerLock(one.database, SCIM)
        try:
            assert free.try_acquire()  # the watcher never took the lock
        finally:
            free.release()
    finally:
        watcher.stop()


# 4. PostgreSQL: LISTEN wakes followers, and a silent LISTEN connection is noticed


class SilentListener(LogListener):
    """Connects and LISTENs, but never wakes anyone: a connection gone silent."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger)
        self.restarts = 0
        self.connections = 0

    def _wake(self) -> None:
        pass

    def _listen(self) -> None:
        self.connections += 1
        super()._listen()

    def restart(self) -> None:
        self.restarts += 1
        super().restart()


def test_a_silent_listen_connection_is_noticed_and_the_events_still_applied(
    postgres_ledgers: tuple[Ledger, Ledger], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=FOLLOWER_LOG)
    ledger, writer = postgres_ledgers
    context = context_for(writer)
    Runner(ledger, ScimProjection()).run_once()  # starts at the head: no backlog to find
    listener = SilentListener(ledger)
    consumer = follower(ledger, listener, listening_poll_interval=0.3)
    try:
        listener.start()
        assert listener.connected.wait(5)
        consumer.start()
        assert consumer.active

        def silent_warnings() -> list[str]:
            return [
                r.getMessage()
                for r in caplog.records
                if r.name == FOLLOWER_LOG and "seems silent" in r.getMessage()
            ]

        # First round: found by a poll that no notification announced, once: not yet.
        position = create_user(writer, context, "round1@example.com")
        eventually(lambda: consumer.runner.stored_position() >= position, 5, "round 1 applied")
        time.sleep(0.4)
        assert silent_warnings() == []
        assert listener.restarts == 0
        # Second round: twice in a row: the listener is said silent and reconnected.
        position = create_user(writer, context, "round2@example.com")
        eventually(lambda: consumer.runner.stored_position() >= position, 5, "round 2 applied")
        eventually(lambda: listener.restarts >= 1, 5, "a restart requested")
        [warning] = silent_warnings()
        assert SCIM in warning
        assert [r.levelno for r in caplog.records if "seems silent" in r.getMessage()] == [
            logging.WARNING
        ]
        eventually(lambda: listener.connections >= 2, 5, "the listener reconnected")
        # Still applied, by polling.
        position = create_user(writer, context, "round3@example.com")
        eventually(lambda: consumer.runner.stored_position() >= position, 5, "round 3 applied")
        assert consumer.runner.stored_position() == head(writer)
        assert {"round1@example.com", "round2@example.com", "round3@example.com"} <= (
            user_names(ledger)
        )
    finally:
        consumer.stop()
        listener.stop()


def test_a_notification_wakes_the_consumer_at_once(
    postgres_ledgers: tuple[Ledger, Ledger], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=FOLLOWER_LOG)
    ledger, writer = postgres_ledgers
    context = context_for(writer)
    listener = LogListener(ledger)
    assert listener.enabled
    # Polls every 30 s at best: only a notification can apply an event within 2 s.
    consumer = follower(ledger, listener, poll_interval=30, listening_poll_interval=30)
    try:
        listener.start()
        assert listener.connected.wait(5)
        consumer.start()
        assert consumer.active
        eventually(
            lambda: consumer.runner.stored_position() == head(writer), 5, "the backlog applied"
        )
        for n in range(3):
            time.sleep(0.1)
            position = create_user(writer, context, f"woken{n}@example.com")
            took = eventually(lambda: consumer.runner.stored_position() >= position, 5, "applied")  # noqa: B023
            assert took < 2
        assert not [r for r in caplog.records if "seems silent" in r.getMessage()]
    finally:
        consumer.stop()
        listener.stop()


def test_sqlite_has_no_listener_and_its_consumer_polls(tmp_path: Path) -> None:
    database = DatabaseURL.parse(f"sqlite:///{tmp_path}/scimledger.db")
    ledger, writer = Ledger(database), Ledger(database)
    context = context_for(writer)
    listener = LogListener(ledger)
    assert not listener.enabled
    consumer = follower(ledger, listener)
    try:
        listener.start()  # nothing to start
        consumer.start()
        position = create_user(writer, context, "polled@example.com")
        eventually(lambda: consumer.runner.stored_position() >= position, 5, "applied by polling")
    finally:
        consumer.stop()
        listener.stop()
        ledger.close()
        writer.close()


# 5. PostgreSQL: processes starting together


def blocked_backends(database: DatabaseURL) -> int:
    """Backends of this database waiting for a lock (here: on another's uncommitted DDL)."""
    with psycopg.connect(**database.connection_kwargs(), autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row is not None else 0


def while_another_process_runs(
    database: DatabaseURL, statement: Any, starting: Callable[[], None]
) -> list[BaseException]:
    """Runs `starting` in a thread while another session has run `statement` in a
    transaction not committed yet (a process starting at the same moment), commits once
    `starting` waits on it, and returns what `starting` raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            starting()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    with psycopg.connect(**database.connection_kwargs()) as other:
        # What a process starting with this code does first (ledger.database.setup_lock).
        other.execute("SELECT pg_advisory_xact_lock(%s)", (SETUP_LOCK_KEY,))
        other.execute(statement)
        thread.start()
        eventually(lambda: blocked_backends(database) > 0, 10, "the start waits on the other")
        other.commit()
    thread.join(timeout=20)
    assert not thread.is_alive()
    return errors


def test_a_follower_starts_while_another_process_creates_the_tracking_table(
    postgres: DatabaseURL,
) -> None:
    ledger = Ledger(postgres)
    starting = follower(ledger)
    try:
        errors = while_another_process_runs(postgres, TRACKING_DDL, starting.start)
        assert errors == [], errors
    finally:
        starting.stop()
        ledger.close()


def test_a_ledger_starts_while_another_process_starts_on_the_same_database(
    postgres: DatabaseURL,
) -> None:
    first = Ledger(postgres)  # the event store exists: this is not the first start
    statement = getattr(first.recorder, "sql_create_pg_function_insert_events")  # noqa: B009
    first.close()
    started: list[Ledger] = []
    try:
        errors = while_another_process_runs(
            postgres, statement, lambda: started.append(Ledger(postgres))
        )
        assert errors == [], errors
    finally:
        for ledger in started:
            ledger.close()
