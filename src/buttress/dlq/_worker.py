"""The worker: lease due dead letters in batches, run their queue's handler, store the outcome.

A batch is leased in one atomic step (the records turn ``retrying`` until the lease ends), the
handlers run, and the outcomes are stored in one more step, each only if the record is still
leased under this batch's token. So a worker that dies loses nothing (its records come due again
when the lease ends and another worker takes them: at least once), and a worker that was too
slow cannot resolve a record another worker has taken since (resolved exactly once).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from buttress import _options as opt
from buttress.dlq._backend import Delivery, Outcome
from buttress.dlq._decide import decide, precheck
from buttress.dlq._records import DeadLetter, Status
from buttress.errors import ConfigError

if TYPE_CHECKING:
    from buttress.dlq._queue import DeadLetterQueue

__all__ = ["Handler", "ProcessReport", "Worker"]

MAX_BATCH = 1000
Result: TypeAlias = Outcome | BaseException | None
"""What running a delivery gave: None (success), the handler's error, or a decided outcome."""
_RESULTS = {Status.RESOLVED: "resolved", Status.PENDING: "retried", Status.PARKED: "parked"}


@dataclass(frozen=True, slots=True)
class Handler:
    """The function that re-processes one queue's messages, and whether it is async."""

    queue: str
    fn: Callable[[DeadLetter], Any]
    is_async: bool


@dataclass(slots=True)
class ProcessReport:
    """What a worker did: records ``taken``; attempts that ``resolved``, were ``retried``
    later or ``parked``; ``stale`` outcomes refused because the lease had passed on."""

    taken: int = 0
    resolved: int = 0
    retried: int = 0
    parked: int = 0
    stale: int = 0

    def merge(self, other: ProcessReport) -> None:
        """Add ``other``'s counts to this report."""
        self.taken += other.taken
        self.resolved += other.resolved
        self.retried += other.retried
        self.parked += other.parked
        self.stale += other.stale


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Runs ``dlq``'s handlers on its due dead letters.

    ``Worker(dlq, *, queues=None, batch=None, lease=None, concurrency=8, name=None)``: the
    queues with a handler (default every one registered when a batch starts), ``batch`` and
    ``lease`` (default the queue's), how many async handlers run at once, and a name for
    leases (default ``host:pid:random``). ``process_batch()`` / ``aprocess_batch()`` run one
    batch; ``run()`` / ``arun()`` loop until stopped, or until nothing is due (``until_idle``).
    """

    def __init__(
        self,
        dlq: DeadLetterQueue,
        *,
        queues: Sequence[str] | None = None,
        batch: int | None = None,
        lease: opt.Duration | None = None,
        concurrency: int = 8,
        name: str | None = None,
    ) -> None:
        self.dlq = dlq
        self.queues = None if queues is None else tuple(queues)
        self.batch = dlq.batch if batch is None else opt.integer("batch", batch)
        if self.batch > MAX_BATCH:
            raise ConfigError("batch", batch, f"must be an integer <= {MAX_BATCH}")
        self.lease = dlq.lease if lease is None else opt.duration("lease", lease)
        self.concurrency = opt.integer("concurrency", concurrency)
        self.name = name or _worker_name()
        self._tokens = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- one batch -----------------------------------------------------------------------------

    def _lease_plan(self) -> tuple[list[str], str, dict[str, Handler]]:
        handlers = self.dlq.handlers
        queues = [q for q in (self.queues or tuple(handlers)) if q in handlers]
        return queues, f"{self.name}:{next(self._tokens)}", handlers

    def _take(self) -> tuple[str, list[Delivery], dict[str, Handler]]:
        queues, token, handlers = self._lease_plan()
        now = self.dlq.clock.time()
        deliveries = self.dlq.backend.lease(queues, now, self.batch, now + self.lease, token)
        return token, deliveries, handlers

    def _outcomes(self, results: list[tuple[Delivery, Result]]) -> tuple[list[Outcome], float]:
        dlq = self.dlq
        now = dlq.clock.time()
        outcomes = []
        for delivery, result in results:
            if isinstance(result, Outcome):
                outcomes.append(result)
                continue
            outcomes.append(
                decide(
                    delivery,
                    result,
                    now,
                    classifier=dlq.classifier,
                    backoff=dlq.backoff,
                    rng=dlq.rng,
                    wall=dlq.clock.time,
                )
            )
        return outcomes, now

    def _report(
        self,
        results: list[tuple[Delivery, Result]],
        outcomes: list[Outcome],
        applied: list[bool],
        seconds: list[float | None],
    ) -> ProcessReport:
        report = ProcessReport(taken=len(outcomes))
        counted = []
        for (delivery, _), outcome, ok, spent in zip(
            results, outcomes, applied, seconds, strict=True
        ):
            verdict = _RESULTS[outcome.status] if ok else "stale"
            setattr(report, verdict, getattr(report, verdict) + 1)
            counted.append((delivery.letter.queue, verdict, spent))
        self.dlq.counters.count_processed(counted)
        return report

    def _finish(
        self, token: str, results: list[tuple[Delivery, Result]], seconds: list[float | None]
    ) -> ProcessReport:
        outcomes, now = self._outcomes(results)
        applied = self.dlq.backend.complete(outcomes, token, now) if outcomes else []
        return self._report(results, outcomes, applied, seconds)

    def _handle(
        self, deliveries: list[Delivery], handlers: dict[str, Handler]
    ) -> tuple[list[tuple[Delivery, Result]], list[float | None]]:
        """Run the handlers here, one after the other (async ones in a private loop)."""
        results: list[tuple[Delivery, Result]] = []
        seconds: list[float | None] = []
        now = self.dlq.clock.time()
        for delivery in deliveries:
            skip = precheck(delivery, now)
            if skip is not None:
                results.append((delivery, skip))
                seconds.append(None)
                continue
            handler = handlers[delivery.letter.queue]
            started = time.perf_counter()
            try:
                if handler.is_async:
                    self._private_loop().run_until_complete(handler.fn(delivery.letter))
                else:
                    handler.fn(delivery.letter)
            except Exception as exc:
                results.append((delivery, exc))
            else:
                results.append((delivery, None))
            seconds.append(time.perf_counter() - started)
        return results, seconds

    def process_batch(self) -> ProcessReport:
        """Lease one batch, run the handlers here (async ones in a private loop), store."""
        token, deliveries, handlers = self._take()
        if not deliveries:
            return ProcessReport()
        results, seconds = self._handle(deliveries, handlers)
        return self._finish(token, results, seconds)

    async def aprocess_batch(self) -> ProcessReport:
        """``process_batch`` for asyncio: async handlers run concurrently (``concurrency`` at
        once), sync ones in a thread; the backend is called in a thread."""
        token, deliveries, handlers = await asyncio.to_thread(self._take)
        if not deliveries:
            return ProcessReport()
        results: list[tuple[Delivery, Result]] = []
        seconds: list[float | None] = []
        now = self.dlq.clock.time()
        runnable: list[tuple[int, Delivery, Handler]] = []
        for delivery in deliveries:
            skip = precheck(delivery, now)
            results.append((delivery, skip))
            seconds.append(None)
            if skip is None:
                runnable.append((len(results) - 1, delivery, handlers[delivery.letter.queue]))
        sync = [item for item in runnable if not item[2].is_async]
        if sync:
            for index, error, spent in await asyncio.to_thread(_run_sync, sync):
                results[index] = (results[index][0], error)
                seconds[index] = spent
        gate = asyncio.Semaphore(self.concurrency)

        async def one(index: int, delivery: Delivery, handler: Handler) -> None:
            async with gate:
                started = time.perf_counter()
                try:
                    await handler.fn(delivery.letter)
                except Exception as exc:
                    results[index] = (delivery, exc)
                seconds[index] = time.perf_counter() - started

        await asyncio.gather(*(one(*item) for item in runnable if item[2].is_async))
        return await asyncio.to_thread(self._finish, token, results, seconds)

    def _private_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop

    # -- loops ---------------------------------------------------------------------------------

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        idle: opt.Duration = 1.0,
        until_idle: bool = False,
        limit: int | None = None,
    ) -> ProcessReport:
        """Process batches until ``stop`` is set, ``limit`` records were taken, or (with
        ``until_idle``) nothing is due; waits ``idle`` seconds when nothing is due. Each batch's
        outcomes are stored with the next batch's lease, in one step."""
        wait = opt.duration("idle", idle)
        stop = stop or threading.Event()
        backend, clock = self.dlq.backend, self.dlq.clock
        total = ProcessReport()
        try:
            token, deliveries, handlers = self._take()
            while True:
                if not deliveries:
                    if until_idle or stop.is_set():
                        break
                    clock.wait(stop, wait)
                    if stop.is_set():
                        break
                    token, deliveries, handlers = self._take()
                    continue
                results, seconds = self._handle(deliveries, handlers)
                outcomes, now = self._outcomes(results)
                taken = total.taken + len(outcomes)
                if stop.is_set() or (limit is not None and taken >= limit):
                    applied, deliveries = backend.complete(outcomes, token, now), []
                else:
                    queues, token_next, handlers = self._lease_plan()
                    applied, deliveries = backend.complete_and_lease(
                        outcomes, token, now, queues, self.batch, now + self.lease, token_next
                    )
                    token = token_next
                total.merge(self._report(results, outcomes, applied, seconds))
                if limit is not None and total.taken >= limit:
                    break
        finally:
            self.close()
        return total

    async def arun(
        self,
        *,
        stop: asyncio.Event | None = None,
        idle: opt.Duration = 1.0,
        until_idle: bool = False,
        limit: int | None = None,
    ) -> ProcessReport:
        """``run`` for asyncio."""
        wait = opt.duration("idle", idle)
        stop = stop or asyncio.Event()
        total = ProcessReport()
        while not stop.is_set() and (limit is None or total.taken < limit):
            report = await self.aprocess_batch()
            total.merge(report)
            if report.taken == 0:
                if until_idle:
                    break
                await self.dlq.clock.asleep(wait)
        return total

    def close(self) -> None:
        """Close the private event loop used for async handlers in sync mode."""
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def __repr__(self) -> str:
        return f"Worker({self.name!r}, batch={self.batch}, lease={self.lease:g})"


def _run_sync(
    items: list[tuple[int, Delivery, Handler]],
) -> list[tuple[int, BaseException | None, float]]:
    out: list[tuple[int, BaseException | None, float]] = []
    for index, delivery, handler in items:
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            handler.fn(delivery.letter)
        except Exception as exc:
            error = exc
        out.append((index, error, time.perf_counter() - started))
    return out
