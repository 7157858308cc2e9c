"""The event store on SQLite: the library's, but for connections that keep their prepared
statements.

eventsourcing (9.5) opens each SQLite connection with `cached_statements=True`, which Python's
sqlite3 takes for a cache of one statement: every statement but the last one a connection ran
was compiled again each time (BEGIN, a token's events, a lookup's SELECT: 80 µs of a lookup's
CPU, measured). These connections keep up to `STATEMENT_CACHE` of them (sqlite3 keeps 128 by
default), and overwrite what they delete (`secure_delete`); the rest is the library's
`_create_connection` unchanged.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from eventsourcing.persistence import InterfaceError
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteFactory,
)

# Prepared statements kept per connection: more than the distinct statements a busy server
# runs (filters compile to few shapes; their values are parameters).
STATEMENT_CACHE = 256


class ConnectionPool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        return SQLiteConnection(sqlite_conn=self.open_sqlite(), max_age=self.max_age)

    def open_sqlite(self) -> sqlite3.Connection:
        """A new connection to the store's database, as the library opens its own, in
        autocommit mode; also for readers that keep one of their own (ledger.credentials)."""
        try:
            c = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,  # autocommit: transactions BEGIN explicitly
                cached_statements=STATEMENT_CACHE,
                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as e:
            raise InterfaceError(e) from e
        # What a delete removes is overwritten, not left in the file's free space: an erased
        # person's data key must be gone from the file (ledger.keys). Debian's SQLite does
        # this by default; others do not.
        c.execute("PRAGMA secure_delete = ON")
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            cursor = c.cursor()
            cursor.execute("PRAGMA journal_mode;")
            mode = cursor.fetchone()[0]
            if mode.lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL;")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        c.row_factory = sqlite3.Row
        return c


class Factory(SQLiteFactory):
    def __init__(self, env: Any) -> None:
        super().__init__(env)
        # The library builds its own pool; no connection is open yet (they open on first
        # use), so changing its class changes how every connection is made.
        self.datastore.pool.__class__ = ConnectionPool
