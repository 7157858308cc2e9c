"""Failing fast while PostgreSQL is unreachable, and noticing by itself when it is back.

Without this, each request during an outage waited for the pool's connection timeout, and
the event store retries its statements ten times: minutes per request, with every worker
thread stuck. Here, the first connection failure closes a gate in front of the datastore's
connections: while it is closed, asking for a connection fails at once with
`DatabaseUnavailable`, which the HTTP layer answers with 503 and Retry-After. Every
`PROBE_AFTER` seconds one caller is let through to try a real connection; its success opens
the gate for everyone. Nothing is half-written: a statement either reached a transaction that
commits, or the transaction never started or rolled back.

Only failures of the connection itself close the gate (the pool could not give one, or the one
it gave is now broken): a lock timeout or a serialization failure is the database working.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError

log = logging.getLogger(__name__)

PROBE_AFTER = 1.0  # seconds between attempts to reach a database that went away
CONNECT_TIMEOUT = 3  # seconds the pool waits for a connection (the library's default: 30)


class DatabaseUnavailable(OperationalError):
    """The database cannot be reached now; retrying later may succeed."""


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot take this now (unreachable, locked, full,
    read-only): retrying later may succeed."""
    return isinstance(exc, OperationalError | InterfaceError) or isinstance(
        exc.__cause__, psycopg.errors.ReadOnlySqlTransaction
    )


class Gate:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_probe = 0.0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def enter(self) -> None:
        """Returns if the caller may use the database now, else raises DatabaseUnavailable."""
        if self._down_since is None:
            return
        with self._lock:
            now = self._clock()
            if self._down_since is not None and now < self._next_probe:
                raise DatabaseUnavailable("the database is unreachable")
            self._next_probe = now + PROBE_AFTER  # this caller probes; the others wait

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self._down_since is None:
                self._down_since = self._clock()
                log.error("database unreachable: %s", type(exc).__name__)
            self._next_probe = self._clock() + PROBE_AFTER

    def succeeded(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is not None:
                log.warning(
                    "database reachable again after %.1f s", self._clock() - self._down_since
                )
                self._down_since = None


def _connection_failed(datastore: Any, connection: Any, exc: BaseException) -> bool:
    """Whether `exc` means the database is out of reach (not a statement that failed, not a
    pool that is merely all in use)."""
    if isinstance(exc, DatabaseUnavailable):
        return False
    if connection is None:  # the pool gave none: all in use, or none can be made?
        return not _reachable(datastore)
    return bool(connection.closed) or connection.pgconn.status != psycopg.pq.ConnStatus.OK


def _reachable(datastore: Any) -> bool:
    pool = datastore.pool
    try:
        psycopg.connect(pool.conninfo, **{**pool.kwargs, "connect_timeout": 2}).close()
    except psycopg.Error:
        return False
    return True


def _drop_broken(datastore: Any) -> None:
    """The pool's idle connections are likely broken too (a restart, a network cut, a
    terminated backend): checked now, the broken ones replaced, rather than handed out one
    by one to the next probes."""
    try:
        datastore.pool.check()
    except Exception:  # the check is a courtesy; the gate already fails callers fast
        log.debug("pool check failed", exc_info=True)


def install(datastore: Any) -> Gate:
    """Puts a gate in front of an eventsourcing PostgresDatastore's connections."""
    gate = Gate()
    inner: Callable[[], AbstractContextManager[Any]] = datastore.get_connection

    @contextmanager
    def get_connection() -> Iterator[Any]:
        gate.enter()
        connection = None
        try:
            with inner() as connection:
                yield connection
        except Exception as exc:
            if _connection_failed(datastore, connection, exc):
                gate.failed(exc)
                _drop_broken(datastore)
                raise DatabaseUnavailable("the database is unreachable") from exc
            raise
        gate.succeeded()

    datastore.get_connection = get_connection
    return gate
