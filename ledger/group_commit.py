"""Group commit: concurrent saves written together, in one transaction of the event store.

Every save pays for a transaction of its own: a lock on the events table, the insert, a
notification, a durable commit. Under concurrent writers the saves queue for that lock
anyway; here they queue in memory instead, and whoever finds no write in progress writes
everything queued so far in one transaction, then hands over to the first save that queued
meanwhile. Nothing waits on a timer: a lone save is written at once, a burst in as many
transactions as it takes the database to commit one.

Each save stays atomic and its outcome exact: a batch that fails on a conflict (an
IntegrityError: some aggregate's version or a claimed name was taken meanwhile) is written
again save by save, so that only the conflicting save fails, as it would have alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import IntegrityError, Recording

from scimledger.ledger.metrics import COMMIT_SAVES

# Events per transaction at most: a burst bigger than this takes several.
MAX_BATCH_EVENTS = 2000

Record = Callable[[ProcessingEvent[UUID]], list[Recording[UUID]]]


class _Save:
    __slots__ = ("error", "finished", "recordings", "save", "wake")

    def __init__(self, save: ProcessingEvent[UUID]) -> None:
        self.save = save
        self.wake = threading.Event()  # written, or this one now leads
        self.finished = False
        self.recordings: list[Recording[UUID]] = []
        self.error: BaseException | None = None

    def outcome(self) -> list[Recording[UUID]]:
        if self.error is not None:
            raise self.error
        return self.recordings


class GroupCommit:
    def __init__(self, record: Record) -> None:
        self._record = record  # writes one ProcessingEvent in one transaction
        self._lock = threading.Lock()
        self._queue: list[_Save] = []
        self._writing = False

    def record(self, save: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Writes `save`, with whatever other saves are queued; its recordings, in order."""
        mine = _Save(save)
        with self._lock:
            self._queue.append(mine)
            lead = not self._writing
            self._writing = True
        if not lead:
            mine.wake.wait()
            if mine.finished:
                return mine.outcome()
        # This thread writes the next batch (its own save is in it).
        with self._lock:
            batch = self._take()
        try:
            self._write(batch)
        finally:
            with self._lock:
                if self._queue:
                    self._queue[0].wake.set()  # the next batch's writer
                else:
                    self._writing = False
        return mine.outcome()

    def _take(self) -> list[_Save]:
        taken, events = 0, 0
        for save in self._queue:
            if taken and events + len(save.save.events) > MAX_BATCH_EVENTS:
                break
            taken += 1
            events += len(save.save.events)
        batch, self._queue = self._queue[:taken], self._queue[taken:]
        return batch

    def _write(self, batch: list[_Save]) -> None:
        if len(batch) == 1:
            self._write_alone(batch[0])
            return
        together: ProcessingEvent[UUID] = ProcessingEvent()
        for item in batch:
            together.events.extend(item.save.events)
            together.aggregates.update(item.save.aggregates)
        try:
            recordings = self._record(together)
            COMMIT_SAVES.observe(len(batch))
        except IntegrityError:
            for item in batch:  # find which save conflicts: each on its own
                self._write_alone(item)
            return
        except BaseException as exc:  # nothing of the batch was written
            for item in batch:
                self._finish(item, error=exc)
            return
        start = 0
        for item in batch:
            end = start + len(item.save.events)
            self._finish(item, recordings=recordings[start:end])
            start = end

    def _write_alone(self, item: _Save) -> None:
        try:
            recordings = self._record(item.save)
        except BaseException as exc:
            self._finish(item, error=exc)
            return
        COMMIT_SAVES.observe(1)
        self._finish(item, recordings=recordings)

    @staticmethod
    def _finish(
        item: _Save,
        *,
        recordings: list[Recording[UUID]] | None = None,
        error: BaseException | None = None,
    ) -> None:
        item.recordings = recordings or []
        item.error = error
        item.finished = True
        item.wake.set()
