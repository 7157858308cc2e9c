"""The database itself refuses to change or remove stored events."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import PersistenceError

from scimledger.ledger.application import Ledger
from scimledger.ledger.database import DatabaseURL
from scimledger.projections.sql import SQL
from tests.conftest import drop_postgres_database, issue, new_postgres_database


def count_events(ledger: Ledger) -> int:
    with SQL(ledger).transaction(commit=False) as cursor:
        cursor.execute(f"SELECT COUNT(*) AS n FROM {ledger.events_table}")
        row = cursor.fetchone()
    assert row is not None
    return int(row["n"])


def rejected(ledger: Ledger, statement: str) -> None:
    with (
        pytest.raises(PersistenceError, match="append-only"),
        SQL(ledger).transaction(commit=True) as cursor,
    ):
        cursor.execute(statement.format(table=ledger.events_table))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET topic = 'forged'",
        "UPDATE {table} SET originator_version = originator_version + 100",
        "DELETE FROM {table}",
        "DELETE FROM {table} WHERE originator_version = 1",
    ],
)
def test_updates_and_deletes_of_events_are_rejected(ledger: Ledger, statement: str) -> None:
    issue(ledger)
    before = count_events(ledger)
    rejected(ledger, statement)
    assert count_events(ledger) == before


def test_truncate_of_events_is_rejected_on_postgresql() -> None:
    # SQLite has no TRUNCATE (its DELETE without WHERE is covered above).
    url = new_postgres_database()
    ledger = Ledger(DatabaseURL.parse(url))
    try:
        issue(ledger)
        rejected(ledger, "TRUNCATE {table}")
        assert count_events(ledger) == 2
    finally:
        ledger.close()
        drop_postgres_database(url)


def test_appending_still_works_and_protection_survives_a_restart(database_url: str) -> None:
    for _ in range(2):  # the second start finds the triggers in place
        ledger = Ledger(DatabaseURL.parse(database_url))
        issue(ledger)
        ledger.close()
    ledger = Ledger(DatabaseURL.parse(database_url))
    try:
        assert count_events(ledger) == 3  # one OrganizationCreated, two TokenIssued
        rejected(ledger, "DELETE FROM {table}")
    finally:
        ledger.close()
