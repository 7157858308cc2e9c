"""Portable SQL over the ledger's own connections (SQLite or PostgreSQL).

Read models live in the same database as the events and use the event store's connection
pool. Statements are written once, with `?` placeholders, and translated for psycopg.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Literal

from scimledger.ledger.application import Ledger

Row = Mapping[str, Any]
Dialect = Literal["sqlite", "postgresql"]


@lru_cache(maxsize=512)
def _to_psycopg(statement: str) -> str:
    return statement.replace("%", "%%").replace("?", "%s")


class Cursor:
    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        self.dialect = dialect

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        if self.dialect == "postgresql":
            self._cursor.execute(_to_psycopg(statement), params)
        else:
            self._cursor.execute(statement, params)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.dialect == "postgresql":
            self._cursor.executemany(_to_psycopg(statement), rows)
        else:
            self._cursor.executemany(statement, rows)

    def fetch_in(self, select: str, column: str, values: Sequence[Any]) -> list[Row]:
        """The rows of `select` whose `column` is one of `values`: one statement on
        PostgreSQL, chunks within SQLite's limit on bound parameters."""
        if not values:
            return []
        if self.dialect == "postgresql":
            self.execute(f"{select} WHERE {column} = ANY(?)", (list(values),))
            return self.fetchall()
        rows: list[Row] = []
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            self.execute(f"{select} WHERE {column} IN ({', '.join('?' * len(chunk))})", chunk)
            rows.extend(self.fetchall())
        return rows

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
