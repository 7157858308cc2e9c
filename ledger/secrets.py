"""Secrets an organization gives the server that must never be in an event: its OpenID Connect
client secret (the console's single sign-on), its webhooks' signing secrets.

They are stored encrypted with the master key (ledger.keys: AES-256-GCM, bound to their
organization, name and moment, so that a row cannot be moved to another), so that a copy of
the database alone holds none of them; values stored in clear before are read as they are.

They live in a table of their own beside the events, not append-only. Each secret set is a new
row, named by the moment it was set; the organization's settings (a SettingsChanged event)
name the current one by that moment, never its value. So a secret counts only once its event
is recorded: a row written by a command that failed afterwards is never read, and is removed
by the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scimledger.ledger.keys import SEALED_SECRET, MasterKey

DDL = """CREATE TABLE IF NOT EXISTS organization_secrets (
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    set_at TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (org_id, name, set_at)
)"""

MAX_SECRET = 4096  # characters


class Secrets:
    """The organization_secrets table, on the ledger's own datastore; `master()` is the key
    the values are sealed with (the key store's, which rotation changes)."""

    def __init__(self, datastore: Any, kind: str, master: Callable[[], MasterKey]) -> None:
        self._datastore = datastore
        self._mark = "?" if kind == "sqlite" else "%s"
        self._master = master

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
                (org_id, name, set_at, self._master().seal(value, bound(org_id, name, set_at))),
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
        return None if row is None else opened(self._master(), org_id, name, set_at, row["value"])

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

    def reseal(self, cursor: Any, new: MasterKey) -> int:
        """Seals every secret again with `new`, in the caller's transaction (a master key's
        rotation: Ledger.rotate_master); returns how many."""
        old = self._master()
        cursor.execute("SELECT org_id, name, set_at, value FROM organization_secrets")
        rows = cursor.fetchall()
        for row in rows:
            where = (str(row["org_id"]), str(row["name"]), str(row["set_at"]))
            plain = opened(old, *where, row["value"])
            cursor.execute(
                self._sql(
                    "UPDATE organization_secrets SET value = ?"
                    " WHERE org_id = ? AND name = ? AND set_at = ?"
                ),
                (new.seal(plain, bound(*where)), *where),
            )
        return len(rows)


def bound(org_id: str, name: str, set_at: str) -> bytes:
    """What a secret is bound to: its organization, name and moment."""
    return f"{org_id}\x00{name}\x00{set_at}".encode()


def opened(master: MasterKey, org_id: str, name: str, set_at: str, value: Any) -> str:
    """A stored secret's value: opened if sealed, as it is if stored in clear before."""
    text = str(value)
    if not text.startswith(SEALED_SECRET):
        return text
    return master.open(text, bound(org_id, name, set_at))
