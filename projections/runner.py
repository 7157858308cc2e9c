"""Keeps a projection caught up with the ledger's notification log, exactly once.

Each batch of events is applied and the projection's position advanced in one transaction.
The position only moves forward from the value read in that same transaction, so a batch is
never applied twice, even by two processes. Notification ids may have gaps (rolled-back
inserts): the runner reads "everything after my position", never "the next id".

Writers call `wait_for(position)` after a save: the runner catches up in the calling thread
(milliseconds), so a write answers only once its read model has it. A `Follower`
(projections.follower) runs it in the background, to pick up events written by other
processes (the CLI, other servers).
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from eventsourcing.persistence import PersistenceError

from scimledger.ledger.application import Ledger
from scimledger.ledger.database import SETUP_LOCK_KEY
from scimledger.projections.sql import SQL, Cursor

log = logging.getLogger(__name__)

TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_tracking ("
    " name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
)


class Projection(Protocol):
    name: str  # carries the version: a read model whose tables change gets a new name
    topics: tuple[type, ...]  # the events it takes, decoded
    raw: bool  # True: it takes every stored event as is, undecoded, instead

    @property
    def tables(self) -> tuple[str, ...]: ...

    def ddl(self, dialect: str) -> tuple[str, ...]: ...

    def prepare(self, event: Any) -> Any:
        """Turns a decoded event into what `add` takes: work that needs no database and
        no batch, which a replay does in its reading thread."""

    def begin(self, cursor: Cursor) -> None:
        """Called at the start of each batch's transaction."""

    def end(self, cursor: Cursor) -> None:
        """Called before each batch's transaction commits (to write what it buffered)."""

    def add(self, cursor: Cursor, event: Any, position: int) -> None:
        """Adds one event of the batch: written at once, or buffered for `end`."""


class LogEntry(NamedTuple):
    """A stored event as read from the log (the fields of the library's `Notification`)."""

    id: int
    originator_id: Any
    originator_version: int
    topic: str
    state: bytes


class Batch(NamedTuple):
    after: int  # the position it was read after: the projection's when it is applied
    last: int  # the position of the last event read (the one before it, when none was)
    size: int  # events read
    events: list[tuple[Any, int]]  # what the projection applies, with their positions


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """A replay allocates millions of short-lived dicts and tuples, freed by reference
    counting; the cyclic collector, run every 700 allocations, took a quarter of a rebuild's
    time (29,600 against 39,600 events/s measured). Its thresholds are raised meanwhile."""
    before = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def setup_lock_in(cursor: Cursor) -> None:
    """Waits for any other process setting tables up (see ledger.database.setup_lock), until
    the end of this transaction."""
    if cursor.dialect == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(?)", (SETUP_LOCK_KEY,))


class ProjectionConflict(RuntimeError):
    """Another runner advanced the same projection concurrently; this batch was undone."""


class Runner:
    def __init__(self, ledger: Ledger, projection: Projection, batch_size: int = 1000) -> None:
        self.ledger = ledger
        self.projection = projection
        self.batch_size = batch_size
        self.sql = SQL(ledger)
        self._topics = frozenset(
            f"{cls.__module__}:{cls.__qualname__}" for cls in projection.topics
        )
        self._types = frozenset(projection.topics)
        self._lock = threading.Lock()
        self.position = 0  # of the last event applied
        self.set_up = False  # whether this runner has made sure its tables exist

    def create_tables(self) -> None:
        """Creates the projection's tables on a database that has none of this version yet,
        dropping any left there first, so that the new version is built from the start of
        the log. Claiming the tracking row decides, once even among processes starting
        together, who sets the tables up; it and the tables are created in one transaction,
        so a tracking row always has its tables. Their statements run only then: a rebuilt
        read model's indexes keep the names they were built with (see `rebuild`)."""
        with self.sql.transaction(commit=True) as cursor:
            setup_lock_in(cursor)
            cursor.execute(TRACKING_DDL)
        with self.sql.transaction(commit=True) as cursor:
            setup_lock_in(cursor)
            cursor.execute(
                "INSERT INTO projection_tracking (name, position) VALUES (?, 0)"
                " ON CONFLICT (name) DO NOTHING RETURNING position",
                (self.projection.name,),
            )
            if cursor.fetchone() is None:
                self.set_up = True
                return
            for table in self.projection.tables:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in self.projection.ddl(self.sql.dialect):
                cursor.execute(statement)
        self.set_up = True

    def stored_position(self) -> int:
        with self.sql.read() as cursor:
            return self.stored_position_in(cursor)

    def stored_position_in(self, cursor: Cursor) -> int:
        cursor.execute(
            "SELECT position FROM projection_tracking WHERE name = ?", (self.projection.name,)
        )
        row = cursor.fetchone()
        return int(row["position"]) if row is not None else 0

    def wait_for(self, position: int | None, timeout: float = 30.0) -> None:
        """Returns once the projection has applied the event at `position` (or later)."""
        if position is None or self.position >= position:
            return
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                # Whoever held the lock may have applied it: then no read at all. Otherwise
                # this caller applies everything recorded so far, for every waiter.
                if self.position >= position:
                    return
                while self._step() == self.batch_size:
                    pass
                if self.position >= position:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.projection.name} did not reach position {position}")
            time.sleep(0.001)

    def catch_up(self) -> int:
        """Applies every recorded event not yet applied; returns the new position."""
        with self._lock:
            while self._step() == self.batch_size:
                pass
            return self.position

    def _step(self) -> int:
        # The log is read in a transaction of its own: on SQLite, a transaction that reads
        # before it writes fails at once ("database is locked") if another process writes
        # in between; the batch's transaction writes the tracking row first instead.
        with self.sql.read() as cursor:
            batch = self._read(cursor, self.position)
        if not batch.size:
            return 0
        try:
            with self.sql.transaction(commit=True) as cursor:
                self._write(cursor, batch)
        except ProjectionConflict:
            # Another process advanced this projection: continue from its position.
            self.position = self.stored_position()
            return self.batch_size
        self.advanced(batch.last)
        return batch.size

    def _read(self, cursor: Cursor, after: int) -> Batch:
        """The next batch after `after`, decoded and prepared for the projection."""
        return self._batch(after, self._rows(cursor, after), cursor.dialect)

    def _rows(self, cursor: Cursor, after: int) -> list[Sequence[Any]]:
        """The log's next rows after `after` (the fields of `LogEntry`): those the
        recorder's `select_notifications` reads, in the caller's transaction, and cheaper."""
        key = "rowid" if cursor.dialect == "sqlite" else "notification_id"
        return cursor.fetch_tuples(
            f"SELECT {key}, originator_id, originator_version, topic, state"
            f" FROM {self.ledger.events_table} WHERE {key} > ? ORDER BY {key} LIMIT ?",
            (after, self.batch_size),
        )

    def _batch(self, after: int, rows: Sequence[Sequence[Any]], dialect: str) -> Batch:
        if not rows:
            return Batch(after, after, 0, [])
        return Batch(after, rows[-1][0], len(rows), self.decode(rows, dialect))

    def decode(self, rows: Sequence[Sequence[Any]], dialect: str) -> list[tuple[Any, int]]:
        """What the projection applies of the log's `rows` (the fields of `LogEntry`), with
        their positions."""
        prepare = self.projection.prepare
        if self.projection.raw:
            sqlite = dialect == "sqlite"  # ids are text there; the recorder gives UUIDs
            entries = [
                LogEntry(row[0], UUID(row[1]), *row[2:]) if sqlite else LogEntry._make(row)
                for row in rows
            ]
            return [(prepare(entry), entry.id) for entry in entries]
        # A LogEntry has every field the mapper reads from a StoredEvent.
        mapper: Any = self.ledger.mapper
        to_event: Callable[[LogEntry], Any] = mapper.to_domain_event
        topics = self._topics
        mapper.preload(rows)
        return [
            (prepare(to_event(LogEntry._make(row))), row[0]) for row in rows if row[3] in topics
        ]

    def takes(self, event: Any) -> bool:
        """Whether the projection applies `event` (a decoded one)."""
        return type(event) in self._types

    def advanced(self, position: int) -> None:
        """The projection's stored position reached `position` (its events were applied in
        their own transaction: projections.inline)."""
        self.position = max(self.position, position)

    def _write(self, cursor: Cursor, batch: Batch) -> None:
        # Writing the tracking row first takes SQLite's write lock at once.
        cursor.execute(
            "UPDATE projection_tracking SET position = ? WHERE name = ? AND position = ?"
            " RETURNING position",
            (batch.last, self.projection.name, batch.after),
        )
        if cursor.fetchone() is None:
            raise ProjectionConflict(self.projection.name)
        projection = self.projection
        projection.begin(cursor)
        for event, position in batch.events:
            projection.add(cursor, event, position)
        projection.end(cursor)

    def replay(self, on_batch: Callable[[], None] | None = None) -> int:
        """Catches up from far behind (a rebuild): a second thread reads and decodes the
        next batches while this one writes the last, so the database works while Python
        decodes. Calls `on_batch` after each batch; returns the position. Raises
        ProjectionConflict if another process moves the position meanwhile."""
        ahead: queue.Queue[Batch | BaseException] = queue.Queue(maxsize=8)  # flat memory
        stop = threading.Event()

        def read(after: int) -> None:
            try:
                while not stop.is_set():
                    # Several batches per transaction: fewer round trips. They are decoded
                    # once it has ended: PostgreSQL ends a transaction left idle for 5 s
                    # (the library's idle_in_transaction_session_timeout), and decoding
                    # 20,000 events takes seconds on a slow machine.
                    fetched: list[tuple[int, list[Sequence[Any]]]] = []
                    with self.sql.transaction(commit=False) as cursor:
                        dialect = cursor.dialect
                        for _ in range(4):
                            rows = self._rows(cursor, after)
                            fetched.append((after, rows))
                            after = rows[-1][0] if rows else after
                            if len(rows) < self.batch_size:
                                break
                    batches = [self._batch(start, rows, dialect) for start, rows in fetched]
                    for batch in batches:
                        while not stop.is_set():
                            try:
                                ahead.put(batch, timeout=0.1)
                                break
                            except queue.Full:
                                continue
                    if batches[-1].size < self.batch_size:
                        return
            except BaseException as exc:  # handed to the writing thread, which raises it
                ahead.put(exc)

        with self._lock, _fewer_collections():
            reader = threading.Thread(
                target=read, args=(self.position,), name="replay-reader", daemon=True
            )
            reader.start()
            try:
                while True:
                    item = ahead.get()
                    if isinstance(item, BaseException):
                        raise item
                    if item.size:
                        with self.sql.transaction(commit=True) as cursor:
                            self._write(cursor, item)
                        self.position = item.last
                        if on_batch is not None:
                            on_batch()
                    if item.size < self.batch_size:
                        return self.position
            finally:
                stop.set()
                reader.join(timeout=5)

    def load_position(self) -> int:
        """Continues from the stored position (another process may have moved it)."""
        with self._lock:
            self.position = self.stored_position()
            return self.position

    def run_once(self) -> int:
        """Sets up the tables and catches up once, in this thread; returns the position."""
        self.create_tables()
        self.load_position()
        return self.catch_up()


@dataclass(frozen=True)
class Status:
    name: str
    position: int | None  # None: never started on this database
    head: int
    lag_events: int
    lag_seconds: float  # age of the oldest event not applied yet; 0 when caught up

    def stalled(self, after_seconds: float) -> bool:
        return self.position is None or self.lag_seconds > after_seconds


def status(ledger: Ledger, projections: list[Projection], now: datetime) -> list[Status]:
    """Where each projection stands against the head of the log."""
    sql = SQL(ledger)
    head = ledger.recorder.max_notification_id() or 0
    try:
        with sql.transaction(commit=False) as cursor:
            cursor.execute("SELECT name, position FROM projection_tracking")
            positions = {row["name"]: int(row["position"]) for row in cursor.fetchall()}
    except PersistenceError:  # no projection ever ran on this database
        positions = {}
    table = ledger.events_table
    column = "rowid" if ledger.database.kind == "sqlite" else "notification_id"
    out = []
    for projection in projections:
        position = positions.get(projection.name)
        start = position or 0
        with sql.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT COUNT(*) AS n FROM {table} WHERE {column} > ?", (start,))
            found = cursor.fetchone()
        lag = int(found["n"]) if found is not None else 0
        oldest = oldest_after(ledger, start) if lag else None
        seconds = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        out.append(Status(projection.name, position, head, lag, seconds))
    return out


def oldest_after(ledger: Ledger, position: int) -> datetime | None:
    """When the log's first event after `position` happened (None: there is none): the age
    of a projection's lag."""
    found = ledger.recorder.select_notifications(start=position, limit=1, inclusive_of_start=False)
    if not found:
        return None
    event: Any = ledger.mapper.to_domain_event(found[0])
    timestamp: datetime = event.timestamp
    return timestamp
