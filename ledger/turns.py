"""Writers to one resource take turns: each reads it, decides and saves in its turn.

Without turns, concurrent writers of one resource race: all read the same version, one save
wins and the others fail the version check and are re-run on the fresh state, up to
MAX_ATTEMPTS. Within a process, 24 writers of one user ran out of attempts; between two
server processes on one PostgreSQL database, the process that kept winning starved the other
one's writers (16 writers adding members to one group: a 409 in about half the runs).

Within a process, a lock per stripe of ids (memory stays fixed). On PostgreSQL, between
processes too, while another process is seen writing: the turn then also holds a session
advisory lock on the resource, on a connection of a small pool of its own (not the event
store's: a writer holding its turn needs one of those to save, and all of them held by
turns would leave none). That lock costs two round trips per write (~10% of PATCH and PUT
throughput on one core), so a process writing alone does without: it takes them for
SHARED_FOR seconds after a sign of another writer, an event appended by a connection not
its own (the log listener hears each append's backend pid) or a version conflict inside a
turn (nothing else in this process could have written).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from scimledger.ledger import availability
from scimledger.ledger.database import DatabaseURL

STRIPES = 256
# Resources a process can be writing at once, across processes; more writers wait their turn.
LOCK_CONNECTIONS = 8
# A turn not given within this long answers 503 (the resource is busy) rather than hang.
LOCK_TIMEOUT_MS = 10_000
# Seconds writes take turns across processes after the last sign of another writer.
SHARED_FOR = 60.0


class Turns:
    def __init__(
        self,
        database: DatabaseURL,
        gate: availability.Gate | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stripes = tuple(threading.Lock() for _ in range(STRIPES))
        self._gate = gate
        self._clock = clock
        self._shared_until = -1.0
        self._own_backends: set[int] = set()
        self._pool: ConnectionPool | None = None
        self._opening = threading.Lock()
        if database.kind == "postgresql":
            self._pool = ConnectionPool(
                kwargs={
                    **database.connection_kwargs(),
                    "autocommit": True,
                    "options": f"-c lock_timeout={LOCK_TIMEOUT_MS}",
                },
                min_size=1,
                max_size=LOCK_CONNECTIONS,
                timeout=availability.CONNECT_TIMEOUT,
                reconnect_timeout=availability.RECONNECT_FOR,
                name="scimledger-turns",
                open=False,
            )

    @property
    def shared(self) -> bool:
        """Whether turns are taken across processes now."""
        return self._pool is not None and self._clock() < self._shared_until

    def watch(self, datastore: Any) -> None:
        """Notes the backend pid of every connection the event store uses: appends by any
        other are another writer's."""
        inner: Callable[[], AbstractContextManager[Any]] = datastore.get_connection

        @contextmanager
        def get_connection() -> Iterator[Any]:
            with inner() as connection:
                if len(self._own_backends) > 4096:  # connections come and go over months
                    self._own_backends.clear()
                self._own_backends.add(connection.info.backend_pid)
                yield connection

        datastore.get_connection = get_connection

    def appended_by(self, backend_pid: int) -> None:
        """An event was appended by the database session `backend_pid`."""
        if backend_pid not in self._own_backends:
            self.contended()

    def contended(self) -> None:
        """Another process writes: take turns with it for a while."""
        self._shared_until = self._clock() + SHARED_FOR

    @contextmanager
    def turn(self, resource_id: UUID) -> Iterator[None]:
        """Held while a write to `resource_id` reads, decides and saves."""
        with self._stripes[resource_id.int % STRIPES]:
            if not self.shared:
                yield
                return
            assert self._pool is not None
            if self._gate is not None and self._gate.down:
                raise availability.DatabaseUnavailable("the database is unreachable")
            key = int.from_bytes(resource_id.bytes[:8], "big", signed=True)
            if self._pool.closed:  # opened at the first write: most processes never write
                with self._opening:
                    if self._pool.closed:
                        self._pool.open()
            connection = self._locked(key)
            try:
                yield
            finally:
                try:
                    connection.execute("SELECT pg_advisory_unlock(%s)", (key,))
                except psycopg.Error:
                    connection.close()  # the session ends, and its lock with it
                self._pool.putconn(connection)

    def _locked(self, key: int) -> psycopg.Connection[Any]:
        """A connection of the pool holding the advisory lock `key`. If the pool's connection
        was ended by the database (a restart), the pool's idle ones are checked, the broken
        ones discarded, and the lock asked for once more."""
        assert self._pool is not None
        for attempt in (1, 2):
            try:
                connection = self._pool.getconn()
            except psycopg.Error as exc:
                raise availability.DatabaseUnavailable("no connection for a turn") from exc
            try:
                connection.execute("SELECT pg_advisory_lock(%s)", (key,))
            except psycopg.errors.LockNotAvailable as exc:  # busy past the lock timeout
                self._pool.putconn(connection)
                raise availability.DatabaseUnavailable("the resource's turn did not come") from exc
            except psycopg.Error as exc:  # a connection the database ended, or unreachable
                connection.close()
                self._pool.putconn(connection)  # a closed connection is discarded
                if attempt == 2:
                    raise availability.DatabaseUnavailable("no connection for a turn") from exc
                self._pool.check()  # the others idle in the pool likely went the same way
                continue
            return connection
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
