"""Following the log: one active consumer per projection, the others watch or stand by.

A `Follower` keeps one projection caught up. It consumes (applies batches) only while it
holds the projection's consumer lock: a PostgreSQL advisory lock held by a connection of
its own, or on SQLite an exclusive `flock` on a file beside the database. Without it, the
follower watches: a write waits until the consumer, in another process, has applied its
position. A follower that may consume tries the lock again every few seconds, so a second
`scimledger project` (or `serve`) takes over within seconds when the first one dies; the
database releases a dead process's locks.

Consumers wake on the log's notifications (the event store NOTIFYs on every insert) and
also poll. A LISTEN connection can go silent without an error (eventsourcing issue #305):
when polling finds events that no notification announced, twice in a row, the follower
says so in the log, reconnects the listener and meanwhile polls at the short interval.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import time
from typing import IO, Any

import psycopg

from scimledger.ledger import availability
from scimledger.ledger.application import Ledger
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.listener import LogListener
from scimledger.projections import scim
from scimledger.projections.inline import InlineScim
from scimledger.projections.registry import PROJECTIONS
from scimledger.projections.runner import Projection, Runner

log = logging.getLogger(__name__)


class ConsumerLock:
    """The right to apply one projection's batches, held by one process at a time."""

    def __init__(self, database: DatabaseURL, name: str) -> None:
        self.database = database
        self.name = name
        self._connection: psycopg.Connection[Any] | None = None
        self._file: IO[bytes] | None = None
        self._unreachable = False  # the last attempt could not connect
        # The projection's advisory lock key (a signed 64-bit integer).
        digest = hashlib.sha256(f"scimledger.projection:{name}".encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)

    def try_acquire(self) -> bool:
        if self.held():
            return True
        if self.database.kind == "sqlite":
            return self._try_flock()
        try:
            connection = psycopg.connect(**self.database.connection_kwargs(), autocommit=True)
        except psycopg.Error:
            # Once per outage at WARNING: it is tried again every few seconds meanwhile.
            level = logging.DEBUG if self._unreachable else logging.WARNING
            log.log(level, "cannot reach the database to take the %s consumer lock", self.name)
            self._unreachable = True
            return False
        self._unreachable = False
        row = connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if row is None or not row[0]:
            connection.close()
            return False
        self._connection = connection
        return True

    def held(self) -> bool:
        """Whether this process holds the lock; on PostgreSQL, checks its connection is
        alive (a lost connection releases the lock)."""
        if self._file is not None:
            return True
        if self._connection is None:
            return False
        try:
            self._connection.execute("SELECT 1")
        except psycopg.Error:
            log.warning("lost the connection holding the %s consumer lock", self.name)
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()  # ends the session: the lock goes with it
            finally:
                self._connection = None
        if self._file is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_UN)
            finally:
                self._file.close()
                self._file = None

    def _try_flock(self) -> bool:
        path = f"{os.path.abspath(self.database.path)}.{self.name}.consumer"
        handle = open(path, "ab")  # noqa: SIM115 (kept open while the lock is held)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True


class Follower:
    """Keeps one projection caught up, as its consumer or by watching the one who is."""

    def __init__(
        self,
        ledger: Ledger,
        projection: Projection,
        *,
        consume: bool = True,
        listener: LogListener | None = None,
        poll_interval: float = 0.2,
        listening_poll_interval: float = 2.0,
        retry_lock_every: float = 1.0,  # as often as ledger.availability probes
        settle: float = 0.0,
    ) -> None:
        self.ledger = ledger
        self.runner = Runner(ledger, projection)
        self.name = projection.name
        self.consume = consume
        self.lock = ConsumerLock(ledger.database, projection.name)
        self.listener = listener
        self._wake = listener.subscribe() if listener is not None else threading.Event()
        self.poll_interval = poll_interval
        self.listening_poll_interval = listening_poll_interval
        self.retry_lock_every = retry_lock_every
        self.settle = settle
        self.active = False  # whether this process is the projection's consumer now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unannounced = 0  # polls in a row that found events nobody announced
        self._failures = availability.BackgroundFailures(log, f"projection {self.name}")

    def start(self) -> None:
        """Sets the tables up and, as the consumer, catches up before returning: a server
        serves no read model older than the log it starts on."""
        self.runner.create_tables()
        self.runner.load_position()
        if self.consume and self._take_over():
            self.runner.catch_up()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"follow:{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.active = False
        self.lock.release()

    def wait_for(self, position: int | None, timeout: float = 30.0) -> None:
        """Returns once the projection has applied the event at `position` (or later)."""
        if position is None or self.runner.position >= position:
            return
        if self.active:
            self.runner.wait_for(position, timeout)
            return
        deadline = time.monotonic() + timeout
        pause = 0.0005
        self._wake.set()  # nudges this process's own consumer thread, if it just took over
        while self.runner.stored_position() < position:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not reach position {position}")
            time.sleep(pause)
            pause = min(pause * 2, 0.01)

    def catch_up(self) -> int:
        """Returns once the projection has applied every event recorded before the call."""
        if self.active:
            return self.runner.catch_up()
        head = self.ledger.recorder.max_notification_id() or 0
        self.wait_for(head)
        return self.runner.stored_position()

    def _take_over(self) -> bool:
        if not self.lock.try_acquire():
            return False
        try:
            self.runner.load_position()  # the previous consumer may have moved it
        except Exception:  # the database went away again: let go, try again later
            log.warning("could not read where %s stands; will try again", self.name)
            self.lock.release()
            return False
        self.active = True
        log.info("consuming %s from position %d", self.name, self.runner.position)
        return True

    def _run(self) -> None:
        last_try = time.monotonic()
        while not self._stop.is_set():
            if not self.active:
                self._stop.wait(self.poll_interval)
                if self.consume and time.monotonic() - last_try >= self.retry_lock_every:
                    last_try = time.monotonic()
                    self._take_over()
                continue
            listening = self.listener is not None and self.listener.connected.is_set()
            interval = self.listening_poll_interval if listening else self.poll_interval
            woken = self._wake.wait(interval)
            if woken and self.settle:
                # Lets a burst of writes gather into one batch: a catch-up per write costs
                # the writers themselves a transaction each (measured: 134 -> 90 creates/s).
                self._stop.wait(self.settle)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if not self.lock.held():
                    self.active = False
                    continue
                before = self.runner.position
                after = self.runner.catch_up()
            except Exception as exc:
                self._failures.failed(exc)
                self._stop.wait(self.poll_interval)
                continue
            self._failures.succeeded()
            self._check_listener(listening, woken, found=after > before)

    def _check_listener(self, listening: bool, woken: bool, *, found: bool) -> None:
        if not listening or woken or not found:
            if woken:
                self._unannounced = 0
            return
        self._unannounced += 1
        if self._unannounced >= 2 and self.listener is not None:
            log.warning(
                "no notification announced new events for %s: the LISTEN connection seems "
                "silent; reconnecting it, polling every %.1f s meanwhile",
                self.name,
                self.poll_interval,
            )
            self._unannounced = 0
            self.listener.connected.clear()
            self.listener.restart()


class Followers:
    """A follower for every projection (projections.registry), sharing one log listener."""

    def __init__(self, ledger: Ledger, *, consume: bool) -> None:
        self.listener = LogListener(ledger)
        self.by_name = {
            kept.name: Follower(
                ledger, kept.build(""), consume=consume, listener=self.listener, settle=kept.settle
            )
            for kept in PROJECTIONS
        }
        # The SCIM read model is written with the events (projections.inline); its follower
        # catches up what was written without it.
        ledger.project_inline(InlineScim(self.by_name[scim.NAME].runner))

    def start(self) -> None:
        self.listener.start()
        for follower in self.by_name.values():
            follower.start()

    def stop(self) -> None:
        for follower in self.by_name.values():
            follower.stop()
        self.listener.stop()
