"""The asyncio worker pool under ``WorkQueue``: grows with the work, shrinks when idle.

Each new item either wakes one idle worker or, below ``max_workers``, starts one, so the pool
holds about as many workers as there are items running or waiting. A worker that stays idle
for ``idle_timeout`` (on the injected clock) retires while more than ``min_workers`` remain.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from buttress._clock import Clock
from buttress.events import emit, wants
from buttress.ratelimit._queue_events import QueueWorkersChanged

__all__ = ["WorkerPool"]

E = TypeVar("E")


class WorkerPool(Generic[E]):
    """Workers that loop on ``take()`` (None: nothing to do) and ``await run(item)``."""

    __slots__ = (
        "_clock",
        "_idle",
        "_idle_timeout",
        "_max",
        "_min",
        "_name",
        "_run",
        "_take",
        "closing",
        "count",
        "tasks",
    )

    def __init__(
        self,
        name: str,
        *,
        min_workers: int,
        max_workers: int,
        idle_timeout: float,
        clock: Clock,
        take: Callable[[], E | None],
        run: Callable[[E], Awaitable[None]],
    ) -> None:
        self._name = name
        self._min = min_workers
        self._max = max_workers
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._take = take
        self._run = run
        self._idle: deque[asyncio.Future[bool]] = deque()
        self.count = 0  # workers running and not told to retire
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False

    def start(self, workers: int) -> None:
        """Start ``workers`` workers on the running loop."""
        for _ in range(workers):
            self._spawn()

    def dispatch(self) -> None:
        """There is a new item: wake an idle worker, or start one if the pool may grow."""
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return
        if self.count < self._max and not self.closing:
            self._spawn()

    async def stop(self, timeout: float | None) -> None:
        """Let the workers finish what ``take()`` still gives them, then end; cancel them after
        ``timeout`` seconds (None: no limit)."""
        self.closing = True
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(True)
        tasks = list(self.tasks)
        if not tasks:
            return
        timer = None
        if timeout is not None:
            clock = self._clock
            timer = clock.call_at(clock.monotonic() + timeout, lambda: [t.cancel() for t in tasks])
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            if timer is not None:
                timer.cancel()

    def _announce(self, old: int) -> None:
        if wants(QueueWorkersChanged):
            emit(QueueWorkersChanged(self._name, self._clock.time(), old, self.count))

    def _spawn(self) -> None:
        self.count += 1
        task = asyncio.get_running_loop().create_task(
            self._work(), name=f"buttress-queue-{self._name}"
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        self._announce(self.count - 1)

    def _retire(self, waiter: asyncio.Future[bool]) -> None:
        """An idle worker's timer ran out: let it go if the pool stays at its minimum or more."""
        if waiter.done() or self.count <= self._min:
            return
        self._idle.remove(waiter)
        self.count -= 1
        waiter.set_result(False)
        self._announce(self.count + 1)

    async def _idle_wait(self) -> bool:
        """Wait for work (True) or to be retired (False)."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._idle.append(waiter)
        timer = None
        if self.count > self._min:
            clock = self._clock
            timer = clock.call_at(
                clock.monotonic() + self._idle_timeout, functools.partial(self._retire, waiter)
            )
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()
            if not waiter.done():  # cancelled while idle
                self._idle.remove(waiter)

    async def _work(self) -> None:
        retired = False
        try:
            while True:
                item = self._take()
                if item is not None:
                    await self._run(item)
                elif self.closing:
                    return
                elif not await self._idle_wait():
                    retired = True  # _retire counted it out already
                    return
        finally:
            if not retired:
                self.count -= 1
                self._announce(self.count + 1)
