"""Lease mode's round trips for ``RedisRateLimiter``: the bookkeeping is ``_lease.py``'s; this
is the refill of one key's block (one ``lease`` script call, which also gives back the units
left in the block) and the give-back at close. One refill per key is in flight at a time: the
other threads (or tasks) asking for the same key wait for it and are served from its block.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable
from typing import Any

from buttress.ratelimit._decision import Decision
from buttress.ratelimit._lease import LeaseBook
from buttress.ratelimit._redis_core import cost_arg, grant
from buttress.ratelimit._redis_wait import DistributedWaiting

__all__ = ["LeasedDecisions"]


class LeasedDecisions(DistributedWaiting):
    """Refills and give-backs of lease mode (see the module docstring)."""

    __slots__ = ()

    _book: LeaseBook | None
    _timeout: float

    def _run(self, key: Hashable, op: str, args: tuple[str, ...]) -> Any:
        """One script call for ``key`` (sync)."""
        raise NotImplementedError

    async def _arun(self, key: Hashable, op: str, args: tuple[str, ...], width: int) -> Any:
        """One script call for ``key`` (asyncio, sharing round trips)."""
        raise NotImplementedError

    def _leased(self, key: Hashable, cost: float, now: float) -> Decision:
        book = self._book
        assert book is not None
        while True:
            with self._lock:
                served = book.serve(key, cost, now)
                if served is not None:
                    return served
                lease = book.lease(key, now)
                busy = lease.busy
                if not isinstance(busy, threading.Event):
                    mine = lease.busy = threading.Event()
                    want, need, give, tag = book.plan(lease, cost, now)
                    break
            busy.wait(self._timeout)  # another thread refills this key: use its block
            now = self._monotonic()
        try:
            args = (cost_arg(want), cost_arg(need), cost_arg(give), tag)
            answer = grant(self._run(key, "lease", args))
            with self._lock:
                return book.settle(lease, cost, now, answer)
        finally:
            with self._lock:
                if lease.busy is mine:
                    lease.busy = None
            mine.set()

    async def _aleased(self, key: Hashable, cost: float, now: float) -> Decision:
        book = self._book
        assert book is not None
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                served = book.serve(key, cost, now)
                if served is not None:
                    return served
                lease = book.lease(key, now)
                busy = lease.busy
                if not (isinstance(busy, asyncio.Future) and busy.get_loop() is loop):
                    mine: asyncio.Future[None] = loop.create_future()
                    lease.busy = mine
                    want, need, give, tag = book.plan(lease, cost, now)
                    break
            await asyncio.shield(busy)  # another task refills this key: use its block
            now = self._monotonic()
        try:
            args = (cost_arg(want), cost_arg(need), cost_arg(give), tag)
            answer = grant(await self._arun(key, "lease", args, 0))
            with self._lock:
                return book.settle(lease, cost, now, answer)
        finally:
            with self._lock:
                if lease.busy is mine:
                    lease.busy = None
            mine.set_result(None)

    def _leftovers(self) -> list[tuple[Hashable, tuple[str, ...]]]:
        book = self._book
        if book is None:
            return []
        with self._lock:
            out: list[tuple[Hashable, tuple[str, ...]]] = []
            for key, lease in book.leases.items():
                units = book.give_back(lease)
                if units > 0:
                    out.append((key, ("0", "0", cost_arg(units), lease.tag)))
            book.leases.clear()
            return out
