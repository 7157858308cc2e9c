"""Tokens and organizations as authentication last read them, kept while nothing can have
changed them.

Every request authenticates; reading its token's events each time cost about as much as
the lookup it guarded (measured: 2.7 ms of Python per request under a profiler, one query).
The cache is live only while something tells it of every change to these aggregates in
time. On PostgreSQL, the server's listener, to which each process that records a Token or an
Organization event sends their ids (`CHANNEL`) right after its commit; the process that
recorded them forgets them at once. While the listener is not connected, every read goes
to the event store, as before. A revocation made elsewhere therefore takes effect here
within the time a notification takes to arrive (milliseconds), not on a timer. On SQLite,
which cannot notify, every read first reads the log's events appended since the last one
(`LogReader`: one indexed query, which finds none most of the time) and forgets what they
change: a revocation made by another process counts at the next request.

Ids found to be no token (garbage, another deployment's tokens) are kept as absent too, for
`ABSENT_FOR` seconds and in a table of their own, so that a client repeating an unknown
token costs no query and a flood of new ones cannot evict the tokens in use. An issue
announces its token's id like any change, so a token issued meanwhile works at once.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import OperationalError

# The PostgreSQL channel on which the ids of changed tokens and organizations are announced.
CHANNEL = "scimledger_credentials"

# Aggregates whose events change what authentication decides.
KINDS = ("Token.", "Organization.")

MAX_ENTRIES = 10_000  # far more tokens than any deployment has; cleared when full
ABSENT_FOR = 30.0  # how long an id found to be no token is believed absent

# The listener pings itself through the channel this often; the cache reads through when it
# has heard nothing for `SILENCE`: a connection that went silent without an error (a
# firewall dropping it) cannot keep a revoked token working.
PING = "ping"
PING_EVERY = 0.5
SILENCE = 2.0


def changes_credentials(event: Any) -> bool:
    return type(event).__qualname__.startswith(KINDS)


def topic_changes_credentials(topic: str) -> bool:
    """The same, of a stored event's topic (`module:Class.Event`)."""
    return topic.partition(":")[2].startswith(KINDS)


class LogReader:
    """SQLite: forgets the tokens and organizations changed by the events appended since the
    last call. Rowids grow in commit order (one writer at a time, each new row past the
    largest), so reading past the last one seen misses nothing.

    It reads on a connection of its own, one statement in autocommit (a WAL reader, which no
    writer blocks): through the event store's pool, a transaction and a pooled connection
    per request cost a fifth of a create's time under load, most of it waiting for one."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], events_table: str) -> None:
        self._connect = connect
        self._head = f"SELECT MAX(rowid) FROM {events_table}"  # noqa: S608 (the library's name)
        self._after = (
            f"SELECT rowid, originator_id, topic FROM {events_table}"  # noqa: S608
            " WHERE rowid > ? ORDER BY rowid"
        )
        self._connection: sqlite3.Connection | None = None
        self._seen: int | None = None  # the last rowid read; None: from the head, first
        self._lock = threading.Lock()

    def check(self, forget: Callable[[list[UUID]], None]) -> None:
        """Reads what was appended since the last call and has `forget` forget the ids
        changed, before any other caller may find nothing new and trust the cache."""
        with self._lock:
            try:
                self._check(forget)
            except sqlite3.Error as exc:
                self._drop()  # a fresh connection next time
                raise OperationalError(exc) from exc

    def _check(self, forget: Callable[[list[UUID]], None]) -> None:
        if self._connection is None:
            self._connection = self._connect()
        if self._seen is None:  # nothing is cached yet: what follows is what counts
            self._seen = int(self._connection.execute(self._head).fetchone()[0] or 0)
            return
        rows = self._connection.execute(self._after, (self._seen,)).fetchall()
        if not rows:
            return
        changed = [UUID(row[1]) for row in rows if topic_changes_credentials(row[2])]
        if changed:
            forget(changed)
        self._seen = int(rows[-1][0])

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None


class Credentials:
    def __init__(self, reader: LogReader | None = None) -> None:
        self._reader = reader  # SQLite: always live, checked against the log at each read
        self._items: dict[UUID, Any] = {}
        self._absent: dict[UUID, float] = {}  # id -> until when (time.monotonic) it is absent
        self._lock = threading.Lock()
        self._live = False
        self._generation = 0  # bumped by every invalidation
        self._heard = 0.0  # when the listener last heard anything (time.monotonic)

    @property
    def live(self) -> bool:
        if self._reader is not None:
            return True
        return self._live and time.monotonic() - self._heard < SILENCE

    def heard(self) -> None:
        """The listener's connection delivered something (a ping, an announcement)."""
        self._heard = time.monotonic()

    def start(self) -> None:
        """Changes are announced from now on (the listener is connected)."""
        with self._lock:
            self._clear()
            self._live = True
            self._heard = time.monotonic()

    def stop(self) -> None:
        """Changes may go unannounced (the listener lost its connection): read through."""
        with self._lock:
            self._clear()
            self._live = False

    def get(self, aggregate_id: UUID, load: Callable[[], Any], *, recheck: bool = True) -> Any:
        """The aggregate, from the cache or `load`ed (None: not found, kept `ABSENT_FOR`).
        `recheck=False`: without reading the log first on SQLite, for a request whose
        authentication just did (its organization's schemas: Ledger.declared)."""
        if self._reader is not None and recheck:
            self._reader.check(self.forget)
        with self._lock:
            if not self.live:
                generation = None
            else:
                found = self._items.get(aggregate_id)
                if found is not None:
                    return found
                if self._absent.get(aggregate_id, 0.0) > time.monotonic():
                    return None
                generation = self._generation
        value = load()
        if generation is None:
            return value
        with self._lock:
            # Kept only if no change was announced while it loaded: it may predate it.
            if self.live and self._generation == generation:
                kept: dict[UUID, Any] = self._items if value is not None else self._absent
                if len(kept) >= MAX_ENTRIES:
                    kept.clear()
                kept[aggregate_id] = value if value is not None else time.monotonic() + ABSENT_FOR
        return value

    def forget(self, ids: Iterable[UUID]) -> None:
        with self._lock:
            self._generation += 1
            for aggregate_id in ids:
                self._items.pop(aggregate_id, None)
                self._absent.pop(aggregate_id, None)

    def forget_all(self) -> None:
        with self._lock:
            self._clear()

    def close(self) -> None:
        """Closes the log reader's connection, if any."""
        if self._reader is not None:
            self._reader.close()

    def _clear(self) -> None:
        self._generation += 1
        self._items.clear()
        self._absent.clear()

    def announced(self, payload: str) -> None:
        """A notification's payload: the changed ids, a listener's ping, or anything else
        (an empty payload, too many ids to list) for "forget everything"."""
        if payload == PING:
            return
        try:
            ids = [UUID(part) for part in payload.split(",")] if payload else None
        except ValueError:
            ids = None
        if ids is None:
            self.forget_all()
        else:
            self.forget(ids)


def announcement(ids: Iterable[UUID]) -> str:
    """The payload announcing `ids` (within PostgreSQL's 8,000 bytes; else forget all)."""
    payload = ",".join(str(aggregate_id) for aggregate_id in ids)
    return payload if len(payload) < 7_000 else ""


def announce(datastore: Any, payload: str) -> None:
    """Sends `payload` on the channel through a connection of the event store's pool."""
    with datastore.get_connection() as connection:
        connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
