"""Portable SQL over the ledger's own connections (SQLite or PostgreSQL).

Read models live in the same database as the events and use the event store's connection
pool. Statements are written once, with `?` placeholders, and translated for psycopg.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Literal, TypeVar

import psycopg
from psycopg.rows import tuple_row

from scimledger.ledger.application import Ledger

Row = Mapping[str, Any]

COPY_FROM = 50  # rows from which an insert on PostgreSQL is a COPY
Dialect = Literal["sqlite", "postgresql"]
Tables = TypeVar("Tables", bound=tuple[str, ...])


def prefixed(tables: Tables, prefix: str) -> Tables:
    """A read model's table names (a NamedTuple) for another build of it (a rebuild's)."""
    return type(tables)(*(prefix + name for name in tables))


@lru_cache(maxsize=512)
def _to_psycopg(statement: str) -> str:
    return statement.replace("%", "%%").replace("?", "%s")


class StatementRefused(Exception):
    """The database refuses to run a statement as too complex (SQLite's parser stack or
    expression depth, PostgreSQL's program limits, SQLSTATE class 54): the request that made
    it is at fault and retrying cannot help."""


# SQLite says so only in words (its code is the generic SQLITE_ERROR).
_SQLITE_LIMITS = (
    "parser stack overflow",
    "expression tree is too large",
    "too many sql variables",
    "too many terms",
    "pattern too complex",
)


def _refused(exc: Exception) -> bool:
    if isinstance(exc, psycopg.Error):
        return (exc.sqlstate or "").startswith("54")
    return isinstance(exc, sqlite3.Error) and any(m in str(exc).lower() for m in _SQLITE_LIMITS)


class Cursor:
    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        self.dialect = dialect

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        try:
            if self.dialect == "postgresql":
                self._cursor.execute(_to_psycopg(statement), params)
            else:
                self._cursor.execute(statement, params)
        except (sqlite3.Error, psycopg.Error) as exc:
            if _refused(exc):
                raise StatementRefused(type(exc).__name__) from exc
            raise

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if len(rows) == 1:  # psycopg's executemany enters and leaves a pipeline for it
            self.execute(statement, rows[0])
            return
        if self.dialect == "postgresql":
            self._cursor.executemany(_to_psycopg(statement), rows)
        else:
            self._cursor.executemany(statement, rows)

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Inserts new rows: with COPY on PostgreSQL for many (several times faster than
        INSERTs for a rebuild's bulk; for a write's few rows its exchange costs more than an
        INSERT), with one prepared INSERT otherwise."""
        if not rows:
            return
        names = ", ".join(columns)
        if self.dialect == "postgresql" and len(rows) >= COPY_FROM:
            with self._cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            self.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)

    def replace_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[str]]
    ) -> None:
        """Writes rows of text, each replacing the row of its key (the first column, which
        no two rows share): on PostgreSQL in one statement, the columns as arrays, which
        psycopg dumps in C (an executemany runs a statement per row)."""
        if not rows:
            return
        key, names = columns[0], ", ".join(columns)
        replaced = ", ".join(f"{name} = excluded.{name}" for name in columns[1:])
        upsert = f" ON CONFLICT ({key}) DO UPDATE SET {replaced}"
        if self.dialect == "postgresql" and len(rows) > 1:
            arrays = ", ".join(["%b::text[]"] * len(columns))  # binary: dumped in C
            self._cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}){upsert}",
                [list(column) for column in zip(*rows, strict=True)],
            )
        else:
            marks = ", ".join("?" * len(columns))
            self.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}){upsert}", rows)

    def fetch_tuples(self, statement: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        """Runs a query and returns its rows as tuples: cheaper than mappings for bulk
        reads (the log, in a replay). Binary transfer on PostgreSQL."""
        if self.dialect == "sqlite":
            self._cursor.execute(statement, params)
            rows: list[Sequence[Any]] = self._cursor.fetchall()
            return rows
        factory = self._cursor.row_factory
        self._cursor.row_factory = tuple_row
        try:
            self._cursor.execute(_to_psycopg(statement), params, binary=True)
            rows = self._cursor.fetchall()
        finally:
            self._cursor.row_factory = factory
        return rows

    def fetch_in(
        self,
        select: str,
        column: str,
        values: Sequence[Any],
        *,
        where: str = "",
        params: Sequence[Any] = (),
        order_by: str = "",
    ) -> list[Row]:
        """The rows of `select` whose `column` is one of `values` (and that meet `where`,
        whose `params` come first): one statement on PostgreSQL, chunks within SQLite's
        limit on bound parameters, each ordered by `order_by`."""
        if not values:
            return []
        where = f"{where} AND " if where else ""
        order_by = f" ORDER BY {order_by}" if order_by else ""
        if self.dialect == "postgresql":
            self.execute(
                f"{select} WHERE {where}{column} = ANY(?){order_by}", (*params, list(values))
            )
            return self.fetchall()
        rows: list[Row] = []
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            self.execute(
                f"{select} WHERE {where}{column} IN ({marks}){order_by}", (*params, *chunk)
            )
            rows.extend(self.fetchall())
        return rows

    def table_exists(self, table: str) -> bool:
        if self.dialect == "sqlite":
            self.execute("SELECT 1 AS found FROM sqlite_master WHERE name = ?", (table,))
            return self.fetchone() is not None
        self.execute("SELECT to_regclass(?) IS NOT NULL AS found", (table,))
        row = self.fetchone()
        return bool(row is not None and row["found"])

    def fetchone(self) -> Row | None:
        row: Row | None = self._cursor.fetchone()
        return row

    def fetchall(self) -> list[Row]:
        rows: list[Row] = self._cursor.fetchall()
        return rows


class SQL:
    """Transactions on the database the ledger stores its events in."""

    def __init__(self, ledger: Ledger) -> None:
        self.dialect: Dialect = ledger.database.kind
        self._datastore: Any = getattr(ledger.recorder, "datastore")  # noqa: B009

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Cursor]:
        """A transaction: committed on success if `commit`, otherwise rolled back."""
        with self._datastore.transaction(commit=commit) as cursor:
            yield Cursor(cursor, self.dialect)

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        """Reads on their own: on PostgreSQL, statements in autocommit (under READ COMMITTED
        a transaction gives several statements no common snapshot anyway, and its ROLLBACK
        makes psycopg forget every prepared statement of the connection, measured: a
        DEALLOCATE ALL and no statement ever prepared); on SQLite, one read transaction."""
        if self.dialect == "postgresql":
            with self._datastore.get_connection() as connection:
                yield Cursor(connection.cursor(), self.dialect)
        else:
            with self.transaction(commit=False) as cursor:
                yield cursor

    @contextmanager
    def snapshot(self) -> Iterator[Cursor]:
        """Reads that must see one state, whatever commits meanwhile (a group and its
        members, read in two statements): on PostgreSQL a REPEATABLE READ, READ ONLY
        transaction, ended by COMMIT (which, unlike ROLLBACK, keeps the connection's prepared
        statements); on SQLite, one read transaction, as `read`."""
        if self.dialect == "postgresql":
            with self._datastore.get_connection() as connection, connection.transaction():
                connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield Cursor(connection.cursor(), self.dialect)
        else:
            with self.transaction(commit=False) as cursor:
                yield cursor
