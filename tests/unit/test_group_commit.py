"""Group commit (ledger.group_commit) against a fake event store: no database.

The fake store records every call it receives, refuses a write that repeats an
(originator_id, originator_version) pair (already stored, or twice in the same write) with the
library's IntegrityError, writing nothing of it, and can be told to block or raise on its n-th
call. Concurrency is driven deterministically: the first write blocks until the other saves
have queued (checked under the committer's own lock), so the expected calls are exact.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import IntegrityError, OperationalError, Recording

from scimledger.ledger import group_commit
from scimledger.ledger.group_commit import GroupCommit

TIMEOUT = 5.0  # seconds: any wait longer than this is a hang, and fails the test


@dataclass(frozen=True)
class FakeEvent:
    originator_id: UUID
    originator_version: int


@dataclass(frozen=True)
class FakeRecording:
    """Like eventsourcing's Recording: the event, and its position in the store."""

    domain_event: FakeEvent
    position: int


def fakes(save: ProcessingEvent[UUID]) -> list[FakeEvent]:
    """The save's events, each one of this module's FakeEvents (all that the tests make)."""
    events = []
    for event in save.events:
        assert isinstance(event, FakeEvent), event
        events.append(event)
    return events


def positions(recordings: list[Recording[UUID]]) -> list[int]:
    """Where the fake store put each recorded event."""
    found = []
    for recording in recordings:
        assert isinstance(recording, FakeRecording), recording
        found.append(recording.position)
    return found


def save_of(
    size: int, *, aggregate: UUID | None = None, first_version: int = 1
) -> ProcessingEvent[UUID]:
    """A save of `size` events of one aggregate, as Application.save would collect it."""
    aggregate = aggregate or uuid4()
    save: ProcessingEvent[UUID] = ProcessingEvent()
    save.events.extend(FakeEvent(aggregate, first_version + n) for n in range(size))
    return save


class FakeStore:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[list[FakeEvent]] = []  # the events of every call, in call order
        self.callers: list[str] = []  # the thread that made each call
        self.rows: list[FakeEvent] = []  # what is stored
        self.hooks: dict[int, Callable[[], None]] = {}  # call index -> run first (block, raise)
        self.entered: dict[int, threading.Event] = {}
        self.active = 0
        self.overlapped = False  # two writes at once: group commit must never do that

    def entered_call(self, index: int) -> threading.Event:
        with self.lock:
            return self.entered.setdefault(index, threading.Event())

    def record(self, processing_event: ProcessingEvent[UUID]) -> list[Any]:
        with self.lock:
            index = len(self.calls)
            self.calls.append(fakes(processing_event))
            self.callers.append(threading.current_thread().name)
            self.active += 1
            self.overlapped |= self.active > 1
            entered = self.entered.setdefault(index, threading.Event())
        entered.set()
        try:
            hook = self.hooks.get(index)
            if hook is not None:
                hook()
            with self.lock:
                keys = [(e.originator_id, e.originator_version) for e in processing_event.events]
                stored = {(e.originator_id, e.originator_version) for e in self.rows}
                if len(set(keys)) != len(keys) or stored & set(keys):
                    raise IntegrityError("duplicate (originator_id, originator_version)")
                recordings = []
                for event in fakes(processing_event):
                    self.rows.append(event)
                    recordings.append(FakeRecording(event, len(self.rows)))
                return recordings
        finally:
            with self.lock:
                self.active -= 1

    def block(
        self, index: int, release: threading.Event, then: BaseException | None = None
    ) -> None:
        """Call `index` waits for `release`, then raises `then` (if given) or writes."""

        def hook() -> None:
            assert release.wait(TIMEOUT), "the test never released the blocked write"
            if then is not None:
                raise then

        self.hooks[index] = hook

    def fail(self, index: int, error: BaseException) -> None:
        def hook() -> None:
            raise error

        self.hooks[index] = hook


class Caller:
    """One thread saving one ProcessingEvent through the committer."""

    counter = itertools.count()

    def __init__(self, committer: GroupCommit, save: ProcessingEvent[UUID]) -> None:
        self.committer = committer
        self.save = save
        self.result: list[Any] | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, name=f"caller-{next(self.counter)}", daemon=True
        )

    def _run(self) -> None:
        try:
            self.result = self.committer.record(self.save)
        except BaseException as exc:
            self.error = exc

    def start(self) -> Caller:
        self.thread.start()
        return self

    def join(self) -> None:
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), f"{self.thread.name} never finished: a deadlock"

    @property
    def name(self) -> str:
        return self.thread.name

    def assert_written(self) -> None:
        """It returned exactly its own events' recordings, in order."""
        assert self.error is None, self.error
        assert self.result is not None
        assert [r.domain_event for r in self.result] == self.save.events


def queued(committer: GroupCommit) -> int:
    with committer._lock:
        return len(committer._queue)


def wait_queued(committer: GroupCommit, count: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while queued(committer) != count:
        assert time.monotonic() < deadline, f"{queued(committer)} saves queued, not {count}"
        time.sleep(0.001)


def start_in_order(committer: GroupCommit, saves: list[ProcessingEvent[UUID]]) -> list[Caller]:
    """Starts a caller per save, each once the previous one has queued: the queue order
    is the list order. A write must be in progress (else the first would lead)."""
    callers = []
    for save in saves:
        callers.append(Caller(committer, save).start())
        wait_queued(committer, len(callers))
    return callers


def start_leader_blocked(
    committer: GroupCommit, store: FakeStore, save: ProcessingEvent[UUID]
) -> tuple[Caller, threading.Event]:
    """A caller whose write (the store's first call) blocks until the returned event is set."""
    release = threading.Event()
    store.block(0, release)
    leader = Caller(committer, save).start()
    assert store.entered_call(0).wait(TIMEOUT)
    return leader, release


def events_of(*saves: ProcessingEvent[UUID]) -> list[FakeEvent]:
    return [event for save in saves for event in fakes(save)]


def test_a_lone_save_is_written_alone_at_once_by_its_own_thread() -> None:
    store = FakeStore()
    committer = GroupCommit(store.record)
    save = save_of(3)
    recordings = committer.record(save)
    assert [r.domain_event for r in recordings] == save.events
    assert positions(recordings) == [1, 2, 3]
    assert store.calls == [save.events]
    assert store.callers == [threading.current_thread().name]
    # The next lone save is written alone too: nothing was left waiting.
    other = save_of(1)
    assert [r.domain_event for r in committer.record(other)] == other.events
    assert store.calls == [save.events, other.events]
    assert store.rows == events_of(save, other)


def test_saves_queued_during_a_write_are_written_together_in_one_call_in_queue_order() -> None:
    store = FakeStore()
    committer = GroupCommit(store.record)
    first = save_of(2)
    leader, release = start_leader_blocked(committer, store, first)
    saves = [save_of(1), save_of(3), save_of(2), save_of(1)]
    callers = start_in_order(committer, saves)
    assert len(store.calls) == 1  # they wait: nobody writes while a write is in progress
    release.set()
    leader.join()
    for caller in callers:
        caller.join()
    assert store.calls == [first.events, events_of(*saves)]
    # The first save that queued wrote the batch: no other thread took over.
    assert store.callers == [leader.name, callers[0].name]
    leader.assert_written()
    for caller in callers:
        caller.assert_written()
    # Positions: each caller has exactly its slice of the batch's recordings.
    positions = [[r.position for r in c.result or []] for c in [leader, *callers]]
    assert positions == [[1, 2], [3], [4, 5, 6], [7, 8], [9]]
    assert store.rows == events_of(first, *saves)
    assert not store.overlapped


def test_the_next_batch_is_handed_to_the_first_save_queued_during_the_previous_one() -> None:
    store = FakeStore()
    committer = GroupCommit(store.record)
    leader, release_first = start_leader_blocked(committer, store, save_of(1))
    batch = start_in_order(committer, [save_of(1), save_of(1)])
    release_second = threading.Event()
    store.block(1, release_second)
    release_first.set()
    assert store.entered_call(1).wait(TIMEOUT)
    # Saves queued while the batch is being written go in the next one, not in this one.
    later = start_in_order(committer, [save_of(2), save_of(1), save_of(1)])
    release_second.set()
    for caller in [leader, *batch, *later]:
        caller.join()
        caller.assert_written()
    assert store.calls == [
        leader.save.events,
        events_of(*(c.save for c in batch)),
        events_of(*(c.save for c in later)),
    ]
    assert store.callers == [leader.name, batch[0].name, later[0].name]
    assert not store.overlapped


@pytest.mark.parametrize("conflict", ["with a save of the same batch", "with a stored event"])
def test_a_batch_conflict_rewrites_each_save_alone_and_fails_only_the_conflicting_one(
    conflict: str,
) -> None:
    store = FakeStore()
    committer = GroupCommit(store.record)
    first = save_of(2)
    leader, release = start_leader_blocked(committer, store, first)
    ok_before = save_of(2)
    # Version 1 of an aggregate that is already taken: by `ok_before`, or by `first`.
    taken = ok_before.events[0] if conflict.startswith("with a save") else first.events[0]
    conflicting = save_of(2, aggregate=taken.originator_id)
    ok_after = save_of(1)
    callers = start_in_order(committer, [ok_before, conflicting, ok_after])
    release.set()
    for caller in [leader, *callers]:
        caller.join()
    leader.assert_written()
    callers[0].assert_written()
    assert isinstance(callers[1].error, IntegrityError)
    assert callers[1].result is None
    callers[2].assert_written()
    assert store.calls == [
        first.events,
        events_of(ok_before, conflicting, ok_after),  # refused as a whole
        ok_before.events,
        conflicting.events,  # refused: the conflict is this save's own
        ok_after.events,
    ]
    # Every alone write is made by the thread that wrote the batch.
    assert store.callers[1:] == [callers[0].name] * 4
    assert store.rows == events_of(first, ok_before, ok_after)
    assert [r.position for r in callers[2].result or []] == [5]
    assert not store.overlapped


def test_a_conflict_in_every_save_of_a_batch_fails_each_of_them() -> None:
    store = FakeStore()
    committer = GroupCommit(store.record)
    first = save_of(1)
    leader, release = start_leader_blocked(committer, store, first)
    same = first.events[0].originator_id
    callers = start_in_order(committer, [save_of(1, aggregate=same) for _ in range(3)])
    release.set()
    for caller in [leader, *callers]:
        caller.join()
    leader.assert_written()
    assert all(isinstance(c.error, IntegrityError) for c in callers)
    assert len(store.calls) == 1 + 1 + 3
    assert store.rows == first.events
    # The committer is free again.
    second = save_of(1, aggregate=same, first_version=2)
    assert [r.domain_event for r in committer.record(second)] == second.events
    assert store.rows == events_of(first, second)


@pytest.mark.parametrize(
    "error",
    [OperationalError("connection lost"), RuntimeError("bug")],
    ids=["OperationalError", "RuntimeError"],
)
def test_any_other_batch_error_fails_every_save_of_the_batch_and_later_saves_still_work(
    error: Exception,
) -> None:
    store = FakeStore()
    committer = GroupCommit(store.record)
    first = save_of(1)
    leader, release_first = start_leader_blocked(committer, store, first)
    batch = start_in_order(committer, [save_of(1), save_of(2), save_of(1)])
    # The batch's write blocks, then fails; meanwhile another save queues.
    release_batch = threading.Event()
    store.block(1, release_batch, then=error)
    release_first.set()
    assert store.entered_call(1).wait(TIMEOUT)
    later = start_in_order(committer, [save_of(2)])
    release_batch.set()
    for caller in [leader, *batch, *later]:
        caller.join()
    leader.assert_written()
    for caller in batch:
        assert caller.error is error
        assert caller.result is None
    # Not retried save by save: only a conflict is.
    later[0].assert_written()
    assert store.calls == [
        first.events,
        events_of(*(c.save for c in batch)),
        later[0].save.events,
    ]
    assert store.callers[2] == later[0].name  # handed over despite the failure
    assert store.rows == events_of(first, later[0].save)
    # And the writer flag was reset: a lone save now is written at once, by its thread.
    lone = save_of(1)
    assert [r.domain_event for r in committer.record(lone)] == lone.events
    assert store.callers[-1] == threading.current_thread().name
    assert not store.overlapped


def test_a_failing_lone_save_raises_to_its_caller_and_leaves_nothing_stuck() -> None:
    store = FakeStore()
    committer = GroupCommit(store.record)
    error = OperationalError("server closed the connection")
    store.fail(0, error)
    with pytest.raises(OperationalError) as raised:
        committer.record(save_of(1))
    assert raised.value is error
    after = Caller(committer, save_of(2)).start()
    after.join()
    after.assert_written()
    assert store.callers[1] == after.name


def test_a_leader_whose_own_write_fails_still_hands_over_to_the_saves_queued_behind_it() -> None:
    store = FakeStore()
    committer = GroupCommit(store.record)
    error = ValueError("cannot encode")
    release = threading.Event()
    store.block(0, release, then=error)
    leader = Caller(committer, save_of(1)).start()
    assert store.entered_call(0).wait(TIMEOUT)
    behind = start_in_order(committer, [save_of(1), save_of(1)])
    release.set()
    for caller in [leader, *behind]:
        caller.join()
    assert leader.error is error
    for caller in behind:
        caller.assert_written()
    assert store.calls[1:] == [events_of(*(c.save for c in behind))]
    assert store.callers[1] == behind[0].name


def test_max_batch_events_splits_a_burst_without_losing_or_repeating_a_save(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(group_commit, "MAX_BATCH_EVENTS", 5)
    store = FakeStore()
    committer = GroupCommit(store.record)
    first = save_of(1)
    leader, release = start_leader_blocked(committer, store, first)
    sizes = [2, 2, 2, 3, 1, 6, 1, 5, 4, 1]
    callers = start_in_order(committer, [save_of(size) for size in sizes])
    release.set()
    for caller in [leader, *callers]:
        caller.join()
        caller.assert_written()
    saves = [c.save for c in callers]
    # Taken in queue order while they fit in 5 events; a save bigger than that goes alone.
    assert store.calls == [
        first.events,
        events_of(saves[0], saves[1]),  # 4 (a third would make 6)
        events_of(saves[2], saves[3]),  # 5
        events_of(saves[4]),  # 1 (the 6 does not fit)
        events_of(saves[5]),  # 6: alone, bigger than a batch
        events_of(saves[6]),  # 1 (the 5 does not fit)
        events_of(saves[7]),  # 5
        events_of(saves[8], saves[9]),  # 5
    ]
    # Each batch was written by the first save of it.
    assert store.callers[1:] == [callers[i].name for i in [0, 2, 4, 5, 6, 7, 8]]
    assert store.rows == events_of(first, *saves)
    assert len(store.rows) == len(set(store.rows))
    assert not store.overlapped


def test_a_random_burst_writes_every_save_once_with_exact_outcomes() -> None:
    """No choreography: many threads, many saves, some conflicting; every outcome exact."""
    store = FakeStore()
    shared = uuid4()  # saves of this aggregate race for its versions 1..
    taken: list[FakeEvent] = []

    def slow_record(processing_event: ProcessingEvent[UUID]) -> list[Any]:
        time.sleep(0.0005)  # a commit's duration: saves queue meanwhile
        return store.record(processing_event)

    committer = GroupCommit(slow_record)
    rng = random.Random(7)
    plans = [
        [
            save_of(1, aggregate=shared, first_version=rng.randint(1, 40))
            if rng.random() < 0.2
            else save_of(rng.randint(1, 4))
            for _ in range(15)
        ]
        for _ in range(16)
    ]
    failures: list[tuple[ProcessingEvent[UUID], BaseException]] = []
    problems: list[str] = []
    barrier = threading.Barrier(len(plans))

    def run(plan: list[ProcessingEvent[UUID]]) -> None:
        barrier.wait(TIMEOUT)
        for save in plan:
            try:
                recordings = committer.record(save)
            except IntegrityError as exc:
                failures.append((save, exc))
                continue
            if [r.domain_event for r in recordings] != save.events:
                problems.append(f"wrong recordings for {save.events}")
            if save.events[0].originator_id == shared:
                taken.append(fakes(save)[0])

    threads = [threading.Thread(target=run, args=(p,), daemon=True) for p in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive()
    assert problems == []
    saves = [save for plan in plans for save in plan]
    failed = {id(save) for save, _ in failures}
    # Only saves of the shared aggregate may fail, and only on a version stored by another.
    for save, _ in failures:
        assert save.events[0] in taken
    written = [save for save in saves if id(save) not in failed]
    assert sorted(map(repr, store.rows)) == sorted(map(repr, events_of(*written)))
    assert len(set(store.rows)) == len(store.rows)
    assert len(store.calls) < len(saves)  # batching did happen
    assert not store.overlapped
