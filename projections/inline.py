"""The SCIM read model written in the events' own transaction (an inline projection).

A write's events, its read-model rows and the read model's tracking position commit
together (ledger.recorders hands the events over while it holds the log's write lock): a
write answers without a second transaction, a read of the log or a wait, and a GET that
follows finds it, on any server.

It is still a projection, applied exactly once. In the transaction, the tracking row is
locked and read with the log's events between it and this write's (one statement):
- none: the read model held everything before this write; its events are applied and the
  position moves to the last of them;
- a few (events another process wrote without this projection: a CLI command's token or
  organization events; or a follower left behind): they are applied first, in log order;
- more than MAX_GAP, or no tables yet (this process's runner has not set them up), or a
  position past these events: nothing is applied here, and the follower catches up as before
  (projections.follower) while the write waits for it.
The follower's own transactions lock the same row first, so they and this one never apply
the same events; a rebuild's switch locks it too (projections.rebuild).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scimledger.projections.runner import Runner
from scimledger.projections.scim_projection import ScimProjection
from scimledger.projections.sql import Cursor

# Events of the log not yet applied that a write applies with its own; beyond, the follower
# catches up (a write must not turn into a replay).
MAX_GAP = 500


def prefixed_columns(columns: str, alias: str) -> str:
    return ", ".join(f"{alias}.{column}" for column in columns.split(", "))


class InlineScim:
    """Applies the SCIM read model's events in the transaction that records them."""

    def __init__(self, runner: Runner) -> None:
        # The follower's runner: its position moves with each commit made here, so that a
        # write's wait for the read model (Runner.wait_for) returns at once.
        self.runner = runner
        self.projection = ScimProjection()  # its own: a batch is built in the writer's thread
        self.dialect = runner.sql.dialect
        events = runner.ledger.events_table
        columns = "originator_id, originator_version, topic, state"
        if self.dialect == "sqlite":
            # The tracking row and the events it has not applied, before this write's.
            self._pending = (
                f"SELECT t.position, 1, e.rowid, {prefixed_columns(columns, 'e')}"
                f" FROM projection_tracking t LEFT JOIN {events} e"
                " ON e.rowid > t.position AND e.rowid < ? WHERE t.name = ?"
                f" ORDER BY e.rowid LIMIT {MAX_GAP + 1}"
            )
        else:
            # The same, the row locked, and the position moved to this write's last event
            # when it will be applied: one round trip.
            self._pending = (
                "WITH t AS (SELECT position FROM projection_tracking WHERE name = ?"
                " FOR UPDATE),"
                # Both bounds on the log's index: a join on the position let a generic
                # plan read the whole index up to this write (13 ms at 12,000 events).
                f" gap AS (SELECT e.notification_id, {prefixed_columns(columns, 'e')}"
                f" FROM {events} e WHERE e.notification_id > (SELECT position FROM t)"
                f" AND e.notification_id < ? ORDER BY e.notification_id"
                f" LIMIT {MAX_GAP + 1}),"
                " moved AS (UPDATE projection_tracking SET position = ?"
                " WHERE name = ? AND (SELECT position FROM t) < ?"
                f" AND (SELECT COUNT(*) FROM gap) <= {MAX_GAP} RETURNING position)"
                " SELECT t.position, (SELECT COUNT(*) FROM moved),"
                f" gap.notification_id, {prefixed_columns(columns, 'gap')}"
                " FROM t LEFT JOIN gap ON true ORDER BY gap.notification_id"
            )

    def apply(self, cursor: Any, recorded: Sequence[tuple[Any, int]]) -> bool:
        if not self.runner.set_up:
            return False
        sql = Cursor(cursor, self.dialect)
        first, last = recorded[0][1], recorded[-1][1]
        name = self.projection.name
        rows = sql.fetch_tuples(
            self._pending,
            (first, name) if self.dialect == "sqlite" else (name, first, last, name, first),
        )
        if not rows or not rows[0][1] or rows[0][0] >= first or len(rows) > MAX_GAP:
            return False
        missed = [tuple(row)[2:] for row in rows if row[2] is not None]
        runner, projection = self.runner, self.projection
        projection.begin(sql)
        for event, position in runner.decode(missed, self.dialect):
            projection.add(sql, event, position)
        for event, position in recorded:
            if runner.takes(event):
                projection.add(sql, projection.prepare(event), position)
        projection.end(sql)
        if self.dialect == "sqlite":  # PostgreSQL's moved with the first statement
            sql.execute(
                "UPDATE projection_tracking SET position = ? WHERE name = ?",
                (last, self.projection.name),
            )
        return True

    def committed(self, position: int) -> None:
        self.runner.advanced(position)
