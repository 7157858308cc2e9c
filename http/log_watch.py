"""One watch of the event log's head per server process, shared by every request that waits
for a change (the events feed's long polls): however many wait, the head is read once every
`POLL_SECONDS`, and not at all while none does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable

from anyio import to_thread

POLL_SECONDS = 0.05
log = logging.getLogger(__name__)


class _Watch:
    """The watch within one event loop (a test's clients may each run their own)."""

    def __init__(self) -> None:
        self.head = 0
        self.moved = asyncio.Event()  # set, and replaced, whenever the head moves
        self.waiting = 0
        self.task: asyncio.Task[None] | None = None


class LogWatch:
    def __init__(self) -> None:
        self._watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watch] = (
            weakref.WeakKeyDictionary()
        )

    async def moved_past(
        self,
        head: int,
        read_head: Callable[[], int | None],
        deadline: float,
        stopping: Callable[[], bool],
    ) -> bool:
        """Whether the log's head went past `head` before `deadline` (monotonic time), or
        before `stopping()`. `read_head` reads it (in a worker thread)."""
        loop = asyncio.get_running_loop()
        watch = self._watches.get(loop)
        if watch is None:
            watch = self._watches[loop] = _Watch()
        watch.waiting += 1
        try:
            if watch.task is None or watch.task.done():
                watch.task = loop.create_task(self._poll(watch, read_head))
            while watch.head <= head and not stopping():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                with contextlib.suppress(TimeoutError):  # to look at `stopping` again
                    await asyncio.wait_for(watch.moved.wait(), timeout=min(left, POLL_SECONDS))
            return watch.head > head
        finally:
            watch.waiting -= 1

    @staticmethod
    async def _poll(watch: _Watch, read_head: Callable[[], int | None]) -> None:
        while watch.waiting:
            try:
                now = await to_thread.run_sync(read_head) or 0
            except Exception as exc:  # the database unreachable: waiters time out meanwhile
                log.warning("could not read the log's head: %s", type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            if now > watch.head:
                watch.head = now
                moved, watch.moved = watch.moved, asyncio.Event()
                moved.set()
            await asyncio.sleep(POLL_SECONDS)
