"""The event store's recorders: the library's own, which also write the SCIM read model in the
events' transaction when the ledger is given an inline projection.

They are plugged in as the library plugs in any application recorder (its
`APPLICATION_RECORDER_TOPIC` setting: see ledger.database) and store every event exactly as
the library's recorders do, so that the library alone still reads the log. What they add:
the domain events saved are handed to the inline projection (`Inline`) with their positions,
inside the transaction that inserts them, while the recorder holds the log's write lock
(PostgreSQL's EXCLUSIVE lock on the events table; SQLite's database lock). The projection's
rows and its tracking position then commit with the events: no second transaction, no read
of the log back, no wait for a follower. Saves that bring no domain events (the library's
own calls) are recorded as the library records them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Composed, Identifier

# The keyword argument a save passes its domain events in (through EventStore.put).
DOMAIN_EVENTS = "inline_events"


class Inline(Protocol):
    """A projection written in the events' own transaction."""

    def apply(self, cursor: Any, recorded: Sequence[tuple[Any, int]]) -> bool:
        """Applies the domain events just inserted, with their positions, in the inserting
        transaction's `cursor` (a DB-API cursor of the recorder's database); False if it
        did not (its followers will)."""

    def committed(self, position: int) -> None:
        """The transaction that `apply` returned True in committed, up to `position`."""


class _Projecting:
    """What both recorders add: the inline projection, if the ledger has one."""

    inline: Inline | None = None

    def _apply(self, cursor: Any, events: Sequence[Any] | None, ids: Sequence[int]) -> int:
        """The position the inline projection reached in this transaction; 0 if none."""
        if self.inline is None or not events or len(ids) != len(events):
            return 0
        return ids[-1] if self.inline.apply(cursor, list(zip(events, ids, strict=True))) else 0

    def _committed(self, position: int) -> None:
        if position and self.inline is not None:
            self.inline.committed(position)


class SQLiteRecorder(_Projecting, SQLiteApplicationRecorder):
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        events = kwargs.pop(DOMAIN_EVENTS, None)
        with self.datastore.transaction(commit=True) as cursor:
            ids = self._insert_events(cursor, stored_events, **kwargs) or []
            reached = self._apply(cursor, events, ids)
        self._committed(reached)
        return ids


class PostgresRecorder(_Projecting, PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The log's write lock and the wake-up of its listeners, in one round trip (a
        # statement without parameters may hold several).
        self._lock_and_notify: Composed = SQL("; ").join(
            [*self.lock_table_statements, SQL("NOTIFY {0}").format(Identifier(self.channel_name))]
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        events = kwargs.pop(DOMAIN_EVENTS, None)
        if self.inline is None or not events or not stored_events:
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self._lock_and_notify)
            cursor.execute(
                self.insert_events_statement,
                (
                    [
                        self.construct_pg_stored_event(
                            e.originator_id, e.originator_version, e.topic, e.state
                        )
                        for e in stored_events
                    ],
                ),
            )
            inserted = [int(row["notification_id"]) for row in cursor.fetchall()]
            reached = self._apply(cursor, events, inserted)
        self._committed(reached)
        return inserted
