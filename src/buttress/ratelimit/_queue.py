"""``WorkQueue``: a bounded priority queue drained by a pool of asyncio workers.

Priority 0 is the highest. Within a priority, items are served first in, first out. When the
queue is full, an arriving item either pushes out the newest item of the lowest priority below
its own (whose submitter gets ``LoadShedError``) or, if there is none, is refused with
``LoadShedError``. An item whose deadline passes while it waits is dropped (its submitter gets
``buttress.TimeoutError``, a ``QueueItemExpired`` event is emitted); it never runs late.

The worker pool (``_queue_workers``) follows the queue's depth between ``min_workers`` and
``max_workers``. The queue lives on one event loop: call ``submit`` from it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

from buttress import _options
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._options import options_dict
from buttress.errors import ConfigError, LoadShedError, TimeoutError
from buttress.events import emit, wants
from buttress.ratelimit._concurrency import Episode, announce
from buttress.ratelimit._queue_core import Entry, PriorityBuffer
from buttress.ratelimit._queue_events import (
    QueueItemExpired,
    QueueItemFailed,
    WorkQueueOptions,
    WorkQueueSnapshot,
)
from buttress.ratelimit._queue_workers import WorkerPool

__all__ = ["WorkQueue"]

T = TypeVar("T")
R = TypeVar("R")


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    """Fail ``future`` with a shedding error without asyncio logging it if nobody reads it."""
    if not future.done():
        future.set_exception(error)
        future.exception()  # marks it retrieved; an awaiting submitter still gets the error


def _is_async(handler: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 (an object with an async __call__)
    )


class WorkQueue(Generic[T, R]):
    """Run ``handler(item)`` for submitted items, highest priority first, on a worker pool.

    ``WorkQueue(handler, *, workers=1, max_size=1000, priorities=1, min_workers=None,
    max_workers=None, deadline=None, idle_timeout=10.0, name="queue", clock=None)``.
    ``handler`` is an async function (awaited by the workers) or a sync one (run in a thread
    pool of ``max_workers`` threads). ``workers`` start with the first submit; the pool then
    scales between ``min_workers`` and ``max_workers`` (both default to ``workers``).
    ``deadline`` is the default for ``submit(deadline=)``, in seconds. ``async with`` closes the
    queue on exit after draining it.
    """

    @overload
    def __init__(
        self,
        handler: Callable[[T], Awaitable[R]],
        *,
        workers: int = 1,
        max_size: int = 1000,
        priorities: int = 1,
        min_workers: int | None = None,
        max_workers: int | None = None,
        deadline: float | timedelta | None = None,
        idle_timeout: float | timedelta = 10.0,
        name: str = "queue",
        clock: Clock | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        handler: Callable[[T], R],
        *,
        workers: int = 1,
        max_size: int = 1000,
        priorities: int = 1,
        min_workers: int | None = None,
        max_workers: int | None = None,
        deadline: float | timedelta | None = None,
        idle_timeout: float | timedelta = 10.0,
        name: str = "queue",
        clock: Clock | None = None,
    ) -> None: ...

    def __init__(
        self,
        handler: Callable[[T], Awaitable[R]] | Callable[[T], R],
        *,
        workers: int = 1,
        max_size: int = 1000,
        priorities: int = 1,
        min_workers: int | None = None,
        max_workers: int | None = None,
        deadline: float | timedelta | None = None,
        idle_timeout: float | timedelta = 10.0,
        name: str = "queue",
        clock: Clock | None = None,
    ) -> None:
        if not callable(handler):
            raise ConfigError("handler", handler, "must be a function taking the item")
        self.name = name
        self.options = opts = WorkQueueOptions.build(
            workers, max_size, priorities, min_workers, max_workers, deadline, idle_timeout
        )
        self.submitted = self.processed = self.failed = 0
        self.expired = self.refused = self.evicted = 0
        self._handler = handler
        self._async = _is_async(handler)
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._buffer: PriorityBuffer[T, R] = PriorityBuffer(opts.priorities)
        self._busy = 0
        self._pool: WorkerPool[Entry[T, R]] = WorkerPool(
            name,
            min_workers=opts.min_workers,
            max_workers=opts.max_workers,
            idle_timeout=opts.idle_timeout,
            clock=self._clock,
            take=self._take,
            run=self._run,
        )
        self._joiners: list[asyncio.Future[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._episode = Episode()
        self._closed = False

    # -- reading -----------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Items waiting to be handled."""
        return self._buffer.depth

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called: submits are refused."""
        return self._closed

    def _oldest(self, now: float) -> float | None:
        for _ in range(3):  # read from another thread, a deque may change under the loop
            try:
                oldest = self._buffer.oldest()
            except RuntimeError:
                continue
            return None if oldest is None else max(0.0, now - oldest)
        return None

    def snapshot(self) -> WorkQueueSnapshot:
        """Depth (in total and per priority), the oldest item's age, workers and counters."""
        now = self._clock.monotonic()
        opts = self.options
        return WorkQueueSnapshot(
            self.name,
            self._buffer.depth,
            tuple(self._buffer.level_depth),
            self._oldest(now),
            opts.max_size,
            self._pool.count,
            self._busy,
            opts.min_workers,
            opts.max_workers,
            self.submitted,
            self.processed,
            self.failed,
            self.expired,
            self.refused,
            self.evicted,
            self._episode.current(now),
            self._closed,
        )

    def describe(self) -> dict[str, Any]:
        """The queue's type, name and options as plain data (for tools and dashboards)."""
        return {"policy": "WorkQueue", "name": self.name, "options": options_dict(self.options)}

    def __repr__(self) -> str:
        return f"WorkQueue({self.name!r}, depth={self._buffer.depth}/{self.options.max_size})"

    # -- submitting --------------------------------------------------------------------------

    def submit(
        self, item: T, *, priority: int | None = None, deadline: float | timedelta | None = None
    ) -> asyncio.Future[R]:
        """Queue ``item``; the returned future gets the handler's result or error.

        ``priority`` is 0 (highest) to ``priorities - 1``, the default (the first to be shed).
        ``deadline`` (seconds, default the queue's) is how long the item may wait for a worker.
        Raises ``LoadShedError`` when the queue is full of items of this priority or higher, or
        closed. The future fails with ``LoadShedError`` if a higher priority pushes the item out,
        and with ``buttress.TimeoutError`` if its deadline passes first.
        """
        if self._closed:
            raise LoadShedError(self.name)
        loop = self._bind()
        opts = self.options
        if priority is None:
            level = opts.priorities - 1
        elif (
            isinstance(priority, bool)
            or not isinstance(priority, int)
            or not 0 <= priority < opts.priorities
        ):
            raise ConfigError(
                "priority", priority, f"must be an integer in [0, {opts.priorities - 1}]"
            )
        else:
            level = priority
        seconds = opts.deadline if deadline is None else _options.duration("deadline", deadline)
        now = self._clock.monotonic()
        if self._buffer.depth >= opts.max_size:
            self._make_room(level, now)
        elif self._episode.active:
            ended = self._episode.admitted(now)
            if ended is not None:
                announce(self.name, self._clock, False, ended)
        future: asyncio.Future[R] = loop.create_future()
        entry = Entry(item, future, level, now, seconds)
        self._buffer.push(entry)
        self.submitted += 1
        if entry.deadline is not None:
            entry.timer = self._clock.call_at(
                entry.deadline, functools.partial(self._expire, entry)
            )
        future.add_done_callback(functools.partial(self._forget, entry))
        self._pool.dispatch()
        return future

    def _make_room(self, level: int, now: float) -> None:
        """Evict the newest item of the lowest priority below ``level``, or refuse."""
        victim = self._buffer.victim(level)
        if victim is None:
            self.refused += 1
        else:
            self.evicted += 1
            self._unlinked(victim)
            _fail(victim.future, LoadShedError(self.name))
        if self._episode.shed(now):
            announce(self.name, self._clock, True)
        if victim is None:
            raise LoadShedError(self.name)

    def _unlinked(self, entry: Entry[T, R]) -> None:
        """``entry`` left the buffer: stop its timer, and tell joiners if all is done."""
        if entry.timer is not None:
            entry.timer.cancel()
        self._check_join()

    def _expire(self, entry: Entry[T, R], now: float | None = None) -> None:
        """Drop ``entry``: its deadline passed while it waited."""
        if now is None:
            if not self._buffer.remove(entry):
                return
            now = self._clock.monotonic()
        self._unlinked(entry)
        self.expired += 1
        seconds = entry.seconds if entry.seconds is not None else 0.0
        _fail(entry.future, TimeoutError(self.name, seconds))
        if wants(QueueItemExpired):
            waited = now - entry.enqueued
            emit(QueueItemExpired(self.name, self._clock.time(), entry.priority, waited, seconds))

    def _forget(self, entry: Entry[T, R], future: asyncio.Future[R]) -> None:
        """The submitter cancelled the future of a waiting item: it will not run."""
        if future.cancelled() and self._buffer.remove(entry):
            self._unlinked(entry)

    # -- workers -----------------------------------------------------------------------------

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._pool.start(self.options.workers)
        elif self._loop is not loop:
            raise RuntimeError(f"work queue {self.name!r} belongs to another event loop")
        return loop

    def _take(self) -> Entry[T, R] | None:
        """The next item to run, highest priority first; expired ones on the way are dropped."""
        while (entry := self._buffer.pop()) is not None:
            if entry.future.cancelled():  # before its done-callback ran
                self._unlinked(entry)
                continue
            if entry.deadline is not None:
                now = self._clock.monotonic()
                if now >= entry.deadline:
                    self._expire(entry, now)
                    continue
            self._busy += 1  # before the join check, so a joiner does not see the queue idle
            self._unlinked(entry)
            return entry
        return None

    async def _run(self, entry: Entry[T, R]) -> None:
        future = entry.future
        try:
            if self._async:
                result = await self._handler(entry.item)  # type: ignore[misc]
            else:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        self.options.max_workers, thread_name_prefix=f"buttress-queue-{self.name}"
                    )
                result = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._handler, entry.item
                )
        except asyncio.CancelledError:
            future.cancel()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the worker itself is being cancelled (close timed out)
        except Exception as exc:
            self.failed += 1
            if not future.done():
                future.set_exception(exc)
            if wants(QueueItemFailed):
                emit(QueueItemFailed(self.name, self._clock.time(), entry.priority, exc))
        else:
            self.processed += 1
            if not future.done():
                future.set_result(result)
        finally:
            self._busy -= 1
            self._check_join()

    # -- joining and closing -----------------------------------------------------------------

    def _check_join(self) -> None:
        if self._buffer.depth == 0 and self._busy == 0 and self._joiners:
            joiners, self._joiners = self._joiners, []
            for joiner in joiners:
                if not joiner.done():
                    joiner.set_result(None)

    async def join(self) -> None:
        """Wait until the queue is empty and no item is being handled."""
        if self._buffer.depth == 0 and self._busy == 0:
            return
        joiner: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._joiners.append(joiner)
        await joiner

    async def close(self, *, drain: bool = True, timeout: float | timedelta | None = None) -> None:
        """Refuse new items, then stop the workers.

        With ``drain`` (the default) the workers first handle what is queued (items still expire
        at their deadline); without it, queued items fail with ``LoadShedError``. After
        ``timeout`` seconds (None: no limit) the workers are cancelled, and so are the futures
        of the items they were handling; a sync handler's thread runs on to its end.
        """
        seconds = _options.optional_duration("timeout", timeout, allow_zero=True)
        self._closed = True
        if not drain:
            self._shed_all()
        await self._pool.stop(seconds)
        self._shed_all()  # what the cancelled workers left behind
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _shed_all(self) -> None:
        for entry in self._buffer.clear():
            self._unlinked(entry)
            _fail(entry.future, LoadShedError(self.name))

    async def __aenter__(self) -> WorkQueue[T, R]:
        self._bind()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
