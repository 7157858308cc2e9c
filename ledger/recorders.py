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

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any, Protocol
from uuid import UUID

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from scimledger.ledger.keys import INSERT_ARRAYS, KeyStore
from scimledger.ledger.sealing import owners
from scimledger.ledger.users import User

# The keyword argument a save passes its domain events in (through EventStore.put).
DOMAIN_EVENTS = "inline_events"
_KeyChanges = tuple[Iterable[UUID], Iterable[UUID]]  # keys written, keys deleted


class Inline(Protocol):
    """A projection written in the events' own transaction."""

    def apply(self, cursor: Any, recorded: Sequence[tuple[Any, int]]) -> bool:
        """Applies the domain events just inserted, with their positions, in the inserting
        transaction's `cursor` (a DB-API cursor of the recorder's database); False if it
        did not (its followers will)."""

    def committed(self, position: int) -> None:
        """The transaction that `apply` returned True in committed, up to `position`."""


class _Projecting:
    """What both recorders add: the inline projection, if the ledger has one, and the data
    keys of the users whose events are recorded (ledger.keys)."""

    inline: Inline | None = None
    keys: KeyStore | None = None

    def _key_changes(self, events: Sequence[Any] | None) -> _KeyChanges:
        """The users whose events these are (their keys, if new, are written with them), and
        those erased (their keys are deleted)."""
        if self.keys is None or not events:
            return (), ()
        created = owners(events)
        erased = [e.originator_id for e in events if isinstance(e, User.UserErased)]
        return created, erased

    def _write_keys(self, cursor: Any, events: Sequence[Any] | None) -> _KeyChanges:
        """In the inserting transaction: the keys made for these events' users, and the
        deletion of those of users erased."""
        created, erased = changes = self._key_changes(events)
        if self.keys is not None and (created or erased):
            self.keys.write(cursor, created, erased)
        return changes

    def _settle_keys(self, changes: _KeyChanges) -> None:
        if self.keys is not None and (changes[0] or changes[1]):
            self.keys.settled(*changes)

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
            keys = self._write_keys(cursor, events)
            reached = self._apply(cursor, events, ids)
        self._settle_keys(keys)
        self._committed(reached)
        return ids


class PostgresRecorder(_Projecting, PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A transaction begun, the log's write lock taken and its listeners woken, in one
        # round trip (a statement without parameters may hold several). Both statements
        # are rendered once: psycopg renders a composed statement again at each use.
        self._begin = (
            SQL("; ")
            .join(
                [
                    SQL("BEGIN"),
                    *self.lock_table_statements,
                    SQL("NOTIFY {0}").format(Identifier(self.channel_name)),
                ]
            )
            .as_string(None)
        )
        # The library's insert passes the events as an array of a composite type, which
        # psycopg dumps in Python (a third of a group commit's CPU in the client); the same
        # rows as four arrays of plain types are dumped in binary by psycopg's C dumpers:
        # 244 -> 81 us of client CPU for four events. The rows stored are the same.
        self._insert = (
            SQL(
                "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
                " SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[])"
                " RETURNING notification_id"
            )
            .format(
                schema=Identifier(self.datastore.schema),
                table=Identifier(self.events_table_name),
                id_type=Identifier(self.datastore.originator_id_type),
            )
            .as_string(None)
        )
        # With the data keys of the users created, in the same statement (a round trip less
        # in the transaction that holds the log's lock; its parameters come first).
        self._insert_with_keys = f"WITH keys AS ({INSERT_ARRAYS}) {self._insert}"

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        events = kwargs.pop(DOMAIN_EVENTS, None)
        if (self.inline is None and self.keys is None) or not events or not stored_events:
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        columns = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        # The transaction is begun by the statement that locks (one round trip less than
        # psycopg's own BEGIN); errors are the library's through its get_connection.
        with self.datastore.get_connection() as connection:
            cursor = connection.cursor()
            try:
                cursor.execute(self._begin)
                created, erased = keys = self._key_changes(events)
                new_keys = self.keys.new_rows(created) if self.keys is not None else []
                if new_keys:
                    key_columns = [list(column) for column in zip(*new_keys, strict=True)]
                    cursor.execute(self._insert_with_keys, (*key_columns, *columns))
                else:
                    cursor.execute(self._insert, columns)
                inserted = [int(row["notification_id"]) for row in cursor.fetchall()]
                if self.keys is not None and erased:
                    self.keys.delete(cursor, erased)
                reached = self._apply(cursor, events, inserted)
                cursor.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    connection.rollback()
                raise
        self._settle_keys(keys)
        self._committed(reached)
        return inserted
