"""When each console session last made a request: what its 30-minute idle limit is counted
from (http.console.sessions).

Not an event (a page view changes nothing), so not in the ledger: kept, like tokens' last
use, in a table beside the read models (created with the tokens read model's tables), and
written at most once a minute per session.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from scimledger.projections.sql import SQL
from scimledger.projections.sql_filters import scim_datetime

DDL = """CREATE TABLE IF NOT EXISTS console_activity (
    session_id TEXT PRIMARY KEY,
    last_seen TEXT NOT NULL
)"""

_UPSERT = (
    "INSERT INTO console_activity (session_id, last_seen) VALUES (?, ?)"
    " ON CONFLICT (session_id) DO UPDATE SET last_seen = excluded.last_seen"
)


class SessionActivity:
    def __init__(self, sql: SQL, interval: timedelta = timedelta(minutes=1)) -> None:
        self._sql = sql
        self._interval = interval

    def started(self, session_id: UUID, now: datetime) -> None:
        with self._sql.transaction(commit=True) as cursor:
            cursor.execute(_UPSERT, (session_id.hex, scim_datetime(now)))

    def seen(self, session_id: UUID, now: datetime) -> datetime | None:
        """The session's last request before this one (None if it never made one), and
        this one recorded if that was more than `interval` ago."""
        with self._sql.transaction(commit=True) as cursor:
            cursor.execute(
                "SELECT last_seen FROM console_activity WHERE session_id = ?", (session_id.hex,)
            )
            row = cursor.fetchone()
            last = datetime.fromisoformat(row["last_seen"]) if row is not None else None
            if last is not None and now - last >= self._interval:
                cursor.execute(_UPSERT, (session_id.hex, scim_datetime(now)))
        return last

    def ended(self, session_id: UUID) -> None:
        with self._sql.transaction(commit=True) as cursor:
            cursor.execute("DELETE FROM console_activity WHERE session_id = ?", (session_id.hex,))
