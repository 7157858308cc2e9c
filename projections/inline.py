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


class InlineScim:
    """Applies the SCIM read model's events in the transaction that records them."""

    def __init__(self, runner: Runner) -> None:
        # The follower's runner: its position moves with each commit made here, so that a
        # write's wait for the read model (Runner.wait_for) returns at once.
        self.runner = runner
        self.projection = ScimProjection()  # its own: a batch is built in the writer's thread
        self.dialect = runner.sql.dialect
        events_table = runner.ledger.events_table
        key = "rowid" if self.dialect == "sqlite" else "notification_id"
        lock = " FOR UPDATE OF t" if self.dialect == "postgresql" else ""
        self._pending = (
            f"SELECT t.position, e.{key}, e.originator_id, e.originator_version, e.topic,"
            f" e.state FROM projection_tracking t LEFT JOIN {events_table} e"
            f" ON e.{key} > t.position AND e.{key} < ? WHERE t.name = ?"
            f" ORDER BY e.{key} LIMIT {MAX_GAP + 1}{lock}"
        )

    def apply(self, cursor: Any, recorded: Sequence[tuple[Any, int]]) -> bool:
        if not self.runner.set_up:
            return False
        sql = Cursor(cursor, self.dialect)
        first, last = recorded[0][1], recorded[-1][1]
        rows = sql.fetch_tuples(self._pending, (first, self.projection.name))
        if not rows or rows[0][0] >= first or len(rows) > MAX_GAP:
            return False
        missed = [tuple(row)[1:] for row in rows if row[1] is not None]
        runner, projection = self.runner, self.projection
        projection.begin(sql)
        for event, position in runner.decode(missed, self.dialect):
            projection.add(sql, event, position)
        for event, position in recorded:
            if runner.takes(event):
                projection.add(sql, projection.prepare(event), position)
        projection.end(sql)
        sql.execute(
            "UPDATE projection_tracking SET position = ? WHERE name = ?",
            (last, self.projection.name),
        )
        return True

    def committed(self, position: int) -> None:
        self.runner.advanced(position)
