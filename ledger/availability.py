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
# Seconds the pool keeps trying to replace a lost connection in the background (psycopg_pool's
# default: 300, with its wait doubling after each try: 1, 2, 4, 8... s). Past it the pool gives
# up, and the next caller's demand makes a new connection at once: so a database back after a
# long outage is used within a probe or two, not after the pool's next, distant, try.
RECONNECT_FOR = 2.0


class DatabaseUnavailable(OperationalError):
    """The database cannot be reached now; retrying later may succeed."""


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot take this now (unreachable, locked, full,
    read-only): retrying later may succeed."""
    return isinstance(exc, OperationalError | InterfaceError) or isinstance(
        exc.__cause__, psycopg.errors.ReadOnlySqlTransaction
    )


def describe(exc: BaseException) -> str:
    """Names a database failure for the log: its class and, where PostgreSQL gave one, the
    error behind it and its SQLSTATE ("OperationalError (DiskFull, SQLSTATE 53100)"). Never
    the message: it can quote the values of a row."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, psycopg.Error):
        cause = cause.__cause__
    if cause is None or cause is exc:
        return type(exc).__name__
    state = f", SQLSTATE {cause.sqlstate}" if cause.sqlstate else ""
    return f"{type(exc).__name__} ({type(cause).__name__}{state})"


class Gate:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_probe = 0.0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def enter(self) -> bool:
        """Whether the caller probes a database that was out of reach (else it is not known
        to be down); raises DatabaseUnavailable if the caller may not use it now."""
        if self._down_since is None:
            return False
        with self._lock:
            if not self.down:  # opened by another caller meanwhile
                return False
            now = self._clock()
            if now < self._next_probe:
                raise DatabaseUnavailable("the database is unreachable")
            self._next_probe = now + PROBE_AFTER  # this caller probes; the others wait
            return True

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


def install(datastore: Any, clock: Callable[[], float] = time.monotonic) -> Gate:
    """Puts a gate in front of an eventsourcing PostgresDatastore's connections."""
    gate = Gate(clock)
    datastore.pool.reconnect_timeout = RECONNECT_FOR
    inner: Callable[[], AbstractContextManager[Any]] = datastore.get_connection

    @contextmanager
    def get_connection() -> Iterator[Any]:
        # A prober first tries a connection of its own: while the database is down, the pool
        # would keep it waiting its whole timeout for a connection it cannot make.
        if gate.enter() and not _reachable(datastore):
            gate.failed(DatabaseUnavailable("the database is unreachable"))
            raise DatabaseUnavailable("the database is unreachable")
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


class BackgroundFailures:
    """How a background task that retries (a projection catching up, a sweep) reports its
    failures: an outage once, as a warning without a traceback, when it begins (the gate has
    logged the outage itself); any other failure each time, with its traceback."""

    def __init__(self, logger: logging.Logger, task: str) -> None:
        self._log = logger
        self._task = task
        self._waiting = False

    def failed(self, exc: BaseException) -> None:
        if not unavailable(exc):
            self._log.error("%s failed; will retry", self._task, exc_info=exc)
        elif not self._waiting:
            self._waiting = True
            self._log.warning(
                "%s waits for the database (%s); will retry", self._task, type(exc).__name__
            )

    def succeeded(self) -> None:
        if self._waiting:
            self._waiting = False
            self._log.info("%s resumed", self._task)
