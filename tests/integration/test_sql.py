"""projections.sql's writes, on both databases: what they leave in the table is exact,
whichever statement each database is given."""

from __future__ import annotations

import pytest

from scimledger.ledger.application import Ledger
from scimledger.projections.sql import SQL


def _rows(sql: SQL) -> list[tuple[str, str]]:
    with sql.transaction(commit=False) as cursor:
        cursor.execute("SELECT k, v FROM replaced ORDER BY k")
        return [(row["k"], row["v"]) for row in cursor.fetchall()]


@pytest.mark.parametrize("count", [1, 3])
def test_replace_rows_adds_new_keys_and_replaces_the_values_of_known_ones(
    ledger: Ledger, count: int
) -> None:
    sql = SQL(ledger)
    with sql.transaction(commit=True) as cursor:
        cursor.execute("CREATE TABLE replaced (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        cursor.execute("INSERT INTO replaced (k, v) VALUES ('a', 'old'), ('z', 'kept')")
    # Values as a client may send them: quotes, backslashes, braces, commas and NULs'
    # neighbours in an array's text form, which a binary array does not care about.
    values = ['{"x": "a,b"}', 'back\\slash "quoted"', "NULL"]
    rows = [(key, value) for key, value in zip(["a", "b", "c"], values, strict=True)][:count]
    with sql.transaction(commit=True) as cursor:
        cursor.replace_rows("replaced", ("k", "v"), rows)
    assert _rows(sql) == sorted([*rows, ("z", "kept")])


def test_replace_rows_of_nothing_writes_nothing(ledger: Ledger) -> None:
    sql = SQL(ledger)
    with sql.transaction(commit=True) as cursor:
        cursor.execute("CREATE TABLE replaced (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        cursor.replace_rows("replaced", ("k", "v"), [])
    assert _rows(sql) == []
