"""http.log_watch: the feed's long polls share one read of the log's head per interval."""

from __future__ import annotations

import asyncio
import threading
import time

from scimledger.http.log_watch import POLL_SECONDS, LogWatch


class Head:
    """A log's head that counts how often it is read."""

    def __init__(self) -> None:
        self.value = 10
        self.reads = 0
        self.lock = threading.Lock()

    def read(self) -> int:
        with self.lock:
            self.reads += 1
            return self.value


def test_many_waiters_read_the_head_once_an_interval_and_all_wake_when_it_moves() -> None:
    head, watch = Head(), LogWatch()

    async def main() -> tuple[list[bool], float, int]:
        deadline = time.monotonic() + 5
        waiters = [
            asyncio.create_task(watch.moved_past(10, head.read, deadline, lambda: False))
            for _ in range(50)
        ]
        await asyncio.sleep(0.5)
        reads_while_waiting = head.reads
        head.value = 11
        moved_at = time.monotonic()
        woken = await asyncio.gather(*waiters)
        return woken, time.monotonic() - moved_at, reads_while_waiting

    woken, latency, reads = asyncio.run(main())
    assert woken == [True] * 50
    assert latency < 4 * POLL_SECONDS
    assert 2 <= reads <= 0.5 / POLL_SECONDS + 2  # not 50 waiters x 10 intervals


def test_nobody_waiting_nothing_is_read_and_a_wait_ends_at_its_deadline() -> None:
    head, watch = Head(), LogWatch()

    async def main() -> tuple[bool, float, int]:
        began = time.monotonic()
        moved = await watch.moved_past(10, head.read, began + 0.2, lambda: False)
        waited = time.monotonic() - began
        reads = head.reads
        await asyncio.sleep(5 * POLL_SECONDS)
        assert head.reads <= reads + 1  # the poll stops once nobody waits
        return moved, waited, reads

    moved, waited, reads = asyncio.run(main())
    assert moved is False
    assert 0.2 <= waited < 0.5
    assert reads >= 2


def test_a_server_stopping_ends_the_wait_at_once() -> None:
    head, watch = Head(), LogWatch()
    stopping = threading.Event()

    async def main() -> tuple[bool, float]:
        began = time.monotonic()
        asyncio.get_running_loop().call_later(0.1, stopping.set)
        moved = await watch.moved_past(10, head.read, began + 10, stopping.is_set)
        return moved, time.monotonic() - began

    moved, waited = asyncio.run(main())
    assert moved is False
    assert waited < 0.1 + 3 * POLL_SECONDS


def test_a_head_that_cannot_be_read_ends_the_wait_at_its_deadline_not_in_an_error() -> None:
    watch = LogWatch()

    def unreadable() -> int:
        raise OSError("database unreachable")

    async def main() -> bool:
        return await watch.moved_past(10, unreadable, time.monotonic() + 0.2, lambda: False)

    assert asyncio.run(main()) is False
