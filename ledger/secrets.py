"""Secrets an organization gives the server that must never be in an event: its OpenID Connect
client secret (the console's single sign-on).

They live in a table of their own beside the events, not append-only. Each secret set is a new
row, named by the moment it was set; the organization's settings (a SettingsChanged event)
name the current one by that moment, never its value. So a secret counts only once its event
is recorded: a row written by a command that failed afterwards is never read, and is removed
by the next one.
"""

from __future__ import annotations

from typing import Any

DDL = """CREATE TABLE IF NOT EXISTS organization_secrets (
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    set_at TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (org_id, name, set_at)
)"""

MAX_SECRET = 4096  # characters


class Secrets:
    """The organization_secrets table, on the ledger's own datastore."""

    def __init__(self, datastore: Any, kind: str) -> None:
        self._datastore = datastore
        self._mark = "?" if kind == "sqlite" else "%s"

    def create_table(self) -> None:
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(DDL)

    def _sql(self, statement: str) -> str:
        return statement.replace("?", self._mark)

    def put(self, org_id: str, name: str, set_at: str, value: str) -> None:
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO organization_secrets (org_id, name, set_at, value)"
                    " VALUES (?, ?, ?, ?)"
                ),
                (org_id, name, set_at, value),
            )

    def get(self, org_id: str, name: str, set_at: str) -> str | None:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT value FROM organization_secrets"
                    " WHERE org_id = ? AND name = ? AND set_at = ?"
                ),
                (org_id, name, set_at),
            )
            row = cursor.fetchone()
        return None if row is None else str(row["value"])

    def keep_only(self, org_id: str, name: str, *set_at: str) -> None:
        """Removes every other secret of that name (all of them, given none): replaced ones,
        and rows of failed commands."""
        kept = "".join(" AND set_at <> ?" for _ in set_at)
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    f"DELETE FROM organization_secrets WHERE org_id = ? AND name = ?{kept}"  # noqa: S608
                ),
                (org_id, name, *set_at),
            )
