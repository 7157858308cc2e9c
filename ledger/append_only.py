"""The event store is append-only, enforced by the database itself.

Triggers reject UPDATE and DELETE of stored events on SQLite and PostgreSQL, and TRUNCATE on
PostgreSQL (SQLite has none). Nothing in scimledger ever changes a stored event; anyone who
tries, with the application's credentials or a database shell, gets an error instead. An
operator with the power to drop the triggers can still change rows: the hash chain
(`scimledger ledger verify`) detects that.
"""

from __future__ import annotations

from typing import Any

MESSAGE = "is append-only: stored events are never changed or removed"


def sqlite_statements(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb} BEFORE {verb.upper()} ON {table}"
        f" BEGIN SELECT RAISE(ABORT, '{table} {MESSAGE}'); END"
        for verb in ("update", "delete")
    ]


def postgresql_statements(table: str) -> list[str]:
    function = "scimledger_append_only"
    return [
        f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% {MESSAGE}', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
        END $$""",
        f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
        f" FOR EACH ROW EXECUTE FUNCTION {function}()",
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


def protect(datastore: Any, dialect: str, tables: list[str]) -> None:
    """Installs the triggers on `tables`, unless they are there already."""
    with datastore.transaction(commit=True) as cursor:
        for table in tables:
            if dialect == "sqlite":
                for statement in sqlite_statements(table):
                    cursor.execute(statement)
                continue
            # Installing takes a lock that blocks writers: do it only when missing, and one
            # process at a time.
            cursor.execute("SELECT pg_advisory_xact_lock(7226013415)")
            cursor.execute(
                "SELECT count(*) AS n FROM pg_trigger WHERE tgrelid = %s::regclass"
                " AND tgname IN (%s, %s)",
                (table, f"{table}_append_only", f"{table}_no_truncate"),
            )
            if cursor.fetchone()["n"] < 2:
                for statement in postgresql_statements(table):
                    cursor.execute(statement)
