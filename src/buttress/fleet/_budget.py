"""``SharedRetryBudget``: what ``RetryBudget(..., shared=store)`` builds: one budget per fleet.

Deposits and withdrawals are counted locally (the base class's buckets, kept up to date as the
fallback) and as unflushed deltas. The process's fleet sync thread flushes the deltas every
``sync_interval`` (default 0.1 s) into ten time buckets covering ``ttl`` in the store and reads
the fleet's totals back: on Redis in one call of ``_lua/budget.lua`` (server time), on other
stores with ``incr``/``get_counter`` per bucket (wall-clock buckets). A retry is allowed while
``fleet retries + our unflushed retries + 1 <= ratio * (fleet calls + our unflushed calls) +
min_per_second * ttl``: no round trip per call.

Over-spend bound: a process learns of the others' retries at its next sync, so the fleet may
exceed the budget by at most what the other processes withdraw in one sync interval (plus one
round trip), i.e. (N - 1) x (one process's retry rate) x ``sync_interval``; each process's own
withdrawals are always counted. When the last successful sync is older than three intervals
(the store failed), decisions fall back to this process's local budget, with the same event as
the breaker (``FleetStoreDegraded``), until a sync succeeds again.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from typing import Any

from buttress._options import Duration, duration
from buttress.breaker._core import peek
from buttress.errors import StoreError
from buttress.fleet._events import FleetStoreDegraded, FleetStoreRestored, announce
from buttress.fleet._sync import SYNCER
from buttress.retry._budget import _BUCKETS, _EPSILON, RetryBudget
from buttress.stores import CounterStore, ScriptStore, load_script

__all__ = ["SharedRetryBudget"]


class SharedRetryBudget(RetryBudget):
    """A ``RetryBudget`` shared by every process using ``store`` and ``name``."""

    __slots__ = (
        "_deposits",
        "_fleet",
        "_flushed",
        "_fresh_until",
        "_interval",
        "_key",
        "_script",
        "_sync_lock",
        "_withdrawals",
        "channel",
        "degraded",
        "due",
        "store",
    )

    def __init__(
        self,
        ratio: float = 0.2,
        min_per_second: float = 10,
        ttl: object = 10.0,
        *,
        shared: CounterStore | None = None,
        sync_interval: Duration = 0.1,
        **options: Any,
    ) -> None:
        super().__init__(ratio, min_per_second, ttl, **options)
        if shared is None:
            raise TypeError("SharedRetryBudget needs shared=<a CounterStore>")
        self.store = shared
        self._interval = duration("sync_interval", sync_interval)
        self._deposits = itertools.count(1)
        self._withdrawals = itertools.count(1)
        self._flushed = (0, 0)
        self._fleet = (0, 0)
        self._fresh_until = -math.inf
        self._key = f"budget:{self.name}"
        self._script = (
            load_script("budget", package="buttress.fleet")
            if isinstance(shared, ScriptStore)
            else None
        )
        self._sync_lock = threading.Lock()
        self.channel: str | None = None
        self.degraded = False
        self.due = 0.0
        self.sync()
        SYNCER.add(self)

    def record_call(self) -> None:
        """Deposit: a call made its first attempt."""
        super().record_call()
        next(self._deposits)

    def try_spend(self) -> bool:
        """Withdraw one retry if the fleet's budget allows it (the local one without a store)."""
        if time.monotonic() >= self._fresh_until:
            if not super().try_spend():
                return False
            next(self._withdrawals)
            return True
        calls = self._fleet[0] + peek(self._deposits) - 1 - self._flushed[0]
        retries = self._fleet[1] + peek(self._withdrawals) - 1 - self._flushed[1]
        if retries + 1 > self.ratio * calls + self._reserve + _EPSILON:
            return False
        next(self._withdrawals)
        now = self._clock.monotonic()
        with self._lock:  # keep the local fallback's numbers true
            if now >= self._edge:
                self._advance(now)
            self._retries[self._index] += 1
            self._total_retries += 1
        return True

    # -- the sync thread's side ---------------------------------------------------------------

    def pubsub_client(self) -> Any | None:
        """Budgets do not subscribe."""
        return None

    def receive(self, data: bytes) -> None:
        """Budgets have no channel: nothing arrives."""

    def sync(self) -> None:
        """Flush the deltas and read the fleet's totals; never raises."""
        with self._sync_lock:
            self._sync()

    def _sync(self) -> None:
        started = time.monotonic()
        self.due = started + self._interval
        calls, retries = peek(self._deposits) - 1, peek(self._withdrawals) - 1
        last, self._flushed = self._flushed, (calls, retries)
        try:
            self._fleet = self._exchange(calls - last[0], retries - last[1])
        except Exception as exc:  # StoreError, or a bug: either way decide locally
            if not self.degraded and time.monotonic() >= self._fresh_until:
                self.degraded = True
                url = getattr(self.store, "url", "?")
                error = str(exc) if isinstance(exc, StoreError) else repr(exc)
                announce(
                    FleetStoreDegraded(
                        source=self.name, time=self._clock.time(), store=url, error=error
                    )
                )
            return
        self._fresh_until = started + 3 * self._interval
        if self.degraded:
            self.degraded = False
            url = getattr(self.store, "url", "?")
            announce(FleetStoreRestored(source=self.name, time=self._clock.time(), store=url))

    def _exchange(self, calls: int, retries: int) -> tuple[int, int]:
        width = self.ttl / _BUCKETS
        if self._script is not None:
            assert isinstance(self.store, ScriptStore)
            key = self.store.layout.key(self._key)
            args = (calls, retries, max(1, round(width * 1000)), _BUCKETS)
            c, r = self.store.run_script(self._script, [key], args)
            return int(c), int(r)
        bucket = math.floor(self._clock.time() / width)
        ttl = self.ttl + width
        if calls:
            self.store.incr(f"{self._key}:c:{bucket}", calls, ttl)
        if retries:
            self.store.incr(f"{self._key}:r:{bucket}", retries, ttl)
        total_c = total_r = 0
        for b in range(bucket - _BUCKETS + 1, bucket + 1):
            total_c += self.store.get_counter(f"{self._key}:c:{b}")
            total_r += self.store.get_counter(f"{self._key}:r:{b}")
        return total_c, total_r

    def close(self) -> None:
        """Stop syncing (the store stays open: it is the caller's)."""
        SYNCER.remove(self)
