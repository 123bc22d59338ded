"""The retry budget (Finagle, Linkerd): retries may add at most a fraction of the traffic.

Every call's first attempt deposits, every retry withdraws, and a retry is allowed while
``retries < ratio * calls + min_per_second * ttl`` over the last ``ttl`` seconds, counting the
retry being asked for (so the retries granted never exceed the right-hand side). When a
dependency is down, retries then add at most ``ratio`` to its load instead of multiplying it.
The counts live in ``_BUCKETS`` time buckets covering ``ttl``: bounded memory, O(1) updates.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._options import duration, number
from buttress.errors import ConfigError

if TYPE_CHECKING:
    from buttress.stores import CounterStore

__all__ = ["BudgetStats", "RetryBudget"]

_BUCKETS = 10
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class BudgetStats:
    """Counts in the current window: first attempts (``calls``), ``retries``, and ``available``."""

    calls: int
    retries: int
    available: int


class RetryBudget:
    """A retry budget shared by every Retry it is given to.

    ``RetryBudget(ratio=0.2, min_per_second=10, ttl=10.0, *, name="budget", clock=None)``:
    retries in the last ``ttl`` seconds stay below ``ratio`` times the calls in that window plus
    ``min_per_second * ttl`` (so that low traffic can still retry). The window moves in steps of
    ``ttl / 10``.

    ``shared=store`` makes it one budget for the fleet (``buttress.fleet``): counts are flushed
    every ``sync_interval`` (0.1 s) by the process's fleet sync thread (started here; ``close()``
    stops it), with a stated over-spend bound; without ``shared`` nothing of that exists.
    """

    __slots__ = (
        "_calls",
        "_clock",
        "_edge",
        "_head",
        "_index",
        "_lock",
        "_reserve",
        "_retries",
        "_total_calls",
        "_total_retries",
        "_width",
        "min_per_second",
        "name",
        "ratio",
        "ttl",
    )

    def __new__(cls, *args: Any, shared: CounterStore | None = None, **kwargs: Any) -> Self:
        if shared is not None and cls is RetryBudget:
            from buttress.fleet._budget import SharedRetryBudget

            return super().__new__(SharedRetryBudget)  # type: ignore[return-value]
        return super().__new__(cls)

    def __init__(
        self,
        ratio: float = 0.2,
        min_per_second: float = 10,
        ttl: object = 10.0,
        *,
        name: str = "budget",
        clock: Clock | None = None,
        shared: CounterStore | None = None,
        sync_interval: object = 0.1,
    ) -> None:
        self.ratio = number("ratio", ratio, minimum=0.0)
        self.min_per_second = number("min_per_second", min_per_second, minimum=0.0)
        self.ttl = duration("ttl", ttl)
        if self.ratio == 0 and self.min_per_second == 0:
            raise ConfigError(
                "ratio", ratio, "must be > 0 when min_per_second is 0 (no retry would ever pass)"
            )
        if not isinstance(name, str) or not name:
            raise ConfigError("name", name, "must be a non-empty string")
        self.name = name
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._reserve = self.min_per_second * self.ttl
        self._width = self.ttl / _BUCKETS
        self._lock = threading.Lock()
        self._calls = [0] * _BUCKETS
        self._retries = [0] * _BUCKETS
        self._total_calls = 0
        self._total_retries = 0
        # The absolute bucket number (monotonic time // width) of the newest bucket, its slot
        # in the ring, and the time at which the next bucket starts.
        self._head = math.floor(self._clock.monotonic() / self._width)
        self._index = self._head % _BUCKETS
        self._edge = (self._head + 1) * self._width

    def _advance(self, now: float) -> None:
        """Move the window forward to ``now``, expiring the buckets it leaves (lock held)."""
        bucket = math.floor(now / self._width)
        head = self._head
        if bucket <= head:
            return
        for slot in range(head + 1, head + 1 + min(bucket - head, _BUCKETS)):
            index = slot % _BUCKETS
            self._total_calls -= self._calls[index]
            self._total_retries -= self._retries[index]
            self._calls[index] = 0
            self._retries[index] = 0
        self._head = bucket
        self._index = bucket % _BUCKETS
        self._edge = (bucket + 1) * self._width

    def record_call(self) -> None:
        """Deposit: a call made its first attempt."""
        now = self._clock.monotonic()
        with self._lock:
            if now >= self._edge:
                self._advance(now)
            self._calls[self._index] += 1
            self._total_calls += 1

    def try_spend(self) -> bool:
        """Withdraw one retry if the budget allows it; False means do not retry."""
        now = self._clock.monotonic()
        with self._lock:
            if now >= self._edge:
                self._advance(now)
            # Allowed while this retry keeps retries <= ratio * calls + reserve (Finagle: a
            # withdrawal needs a whole retry's worth of balance). The epsilon forgives float
            # rounding in ratio * calls (0.1 * 30 is 3.0000000000000004).
            if self._total_retries + 1 > self.ratio * self._total_calls + self._reserve + _EPSILON:
                return False
            self._retries[self._index] += 1
            self._total_retries += 1
            return True

    def snapshot(self) -> BudgetStats:
        """Calls and retries in the current window, and how many retries it still allows."""
        now = self._clock.monotonic()
        with self._lock:
            if now >= self._edge:
                self._advance(now)
            calls, retries = self._total_calls, self._total_retries
        allowance = self.ratio * calls + self._reserve + _EPSILON - retries
        return BudgetStats(calls=calls, retries=retries, available=max(0, math.floor(allowance)))

    def describe(self) -> dict[str, Any]:
        """The budget's name and settings as plain data."""
        return {
            "name": self.name,
            "ratio": self.ratio,
            "min_per_second": self.min_per_second,
            "ttl": self.ttl,
        }

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self.ratio:g}, min_per_second={self.min_per_second:g}, "
            f"ttl={self.ttl:g}, name={self.name!r})"
        )
