"""When each console session last made a request: what its 30-minute idle limit is counted
from (http.console.sessions); and which of its once-only forms it has sent (a token's form:
sent again by a page reload, it would generate a second token).

Not events (a page view changes nothing; the token a form generates is one), so not in the
ledger: kept, like tokens' last use, in tables beside the read models (created with the
tokens read model's tables); the last request written at most once a minute per session.
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

FORMS_DDL = """CREATE TABLE IF NOT EXISTS console_forms_sent (
    session_id TEXT NOT NULL,
    form TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (session_id, form)
)"""
FORMS_KEPT = timedelta(hours=12)  # a session's longest life

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
            cursor.execute("DELETE FROM console_forms_sent WHERE session_id = ?", (session_id.hex,))

    def form_sent(self, session_id: UUID, form: str, now: datetime) -> bool:
        """Records that the session sent the once-only form `form`: False if it had already
        (in any process). Forms older than a session's life are forgotten on the way."""
        with self._sql.transaction(commit=True) as cursor:
            cursor.execute(
                "DELETE FROM console_forms_sent WHERE sent_at < ?",
                (scim_datetime(now - FORMS_KEPT),),
            )
            cursor.execute(
                "INSERT INTO console_forms_sent (session_id, form, sent_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING RETURNING form",
                (session_id.hex, form, scim_datetime(now)),
            )
            return cursor.fetchone() is not None

    def form_failed(self, session_id: UUID, form: str) -> None:
        """Forgets that the form was sent: what it asked for failed, it may be sent again."""
        with self._sql.transaction(commit=True) as cursor:
            cursor.execute(
                "DELETE FROM console_forms_sent WHERE session_id = ? AND form = ?",
                (session_id.hex, form),
            )
