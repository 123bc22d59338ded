"""Sliding window log: the exact sliding window, at the price of one entry per admitted request.

The state is a ``LogState``: the admitted requests' expiry times (admission time + ``W``) and
costs, oldest first, and their total. A request of ``cost`` at ``now``::

    drop the entries with expiry <= now
    if cost > limit:             refused forever
    elif total + cost <= limit:  allowed, append (now + W, cost)
    else:                        refused, retry_after = the expiry of the entry whose
                                 leaving (with every older one) makes room for cost

so in every interval ``(t - W, t]`` the admitted costs add up to at most ``limit``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from buttress import _options
from buttress.ratelimit._algorithm import Algorithm
from buttress.ratelimit._decision import NEVER, Decision, wait_until
from buttress.ratelimit._rate import parse_period

__all__ = ["LogState", "SlidingWindowLog"]

_new = tuple.__new__
_SLACK = 1e-9


class LogState:
    """One key's log: expiry times and costs of the admitted requests, oldest first."""

    __slots__ = ("costs", "expiries", "total")

    def __init__(self) -> None:
        self.expiries: deque[float] = deque()
        self.costs: deque[float] = deque()
        self.total: float = 0

    def prune(self, now: float) -> None:
        """Forget the entries that expired at or before ``now``."""
        expiries = self.expiries
        while expiries and expiries[0] <= now:
            expiries.popleft()
            self.total -= self.costs.popleft()
        if not expiries:
            self.total = 0  # no rounding residue from float costs

    def copy(self) -> LogState:
        """An independent copy of the log."""
        twin = LogState()
        twin.expiries.extend(self.expiries)
        twin.costs.extend(self.costs)
        twin.total = self.total
        return twin

    def __repr__(self) -> str:
        return f"LogState(entries={len(self.expiries)}, total={self.total!r})"


class SlidingWindowLog(Algorithm):
    """At most ``limit`` in every sliding window of ``window`` seconds, exactly.

    ``SlidingWindowLog(limit, window)``: keeps the time of each admitted request for a window,
    so memory grows with ``limit`` per key; prefer ``SlidingWindowCounter`` for large limits.
    """

    __slots__ = ()

    def __init__(self, limit: int, window: float | str | Any) -> None:
        self.limit = _options.integer("limit", limit, minimum=1)
        self.capacity = float(self.limit)
        self.period = parse_period("window", window)

    def options(self) -> dict[str, Any]:
        """``limit`` and ``window`` (seconds)."""
        return {"limit": self.limit, "window": self.period}

    def decide(self, state: Any, now: float, cost: float) -> tuple[Any, Decision]:
        """See the module docstring; the state is a ``LogState`` (changed in place) or None."""
        limit = self.limit
        log: LogState = LogState() if state is None else state
        log.prune(now)
        expiries = log.expiries
        reset = expiries[-1] - now if expiries else 0.0
        if cost > limit:
            left = int(limit - log.total + _SLACK)
            return state, _new(Decision, (False, max(left, 0), NEVER, reset, limit))
        if log.total + cost <= limit:
            end = now + self.period
            expiries.append(end)
            log.costs.append(cost)
            log.total += cost
            left = int(limit - log.total + _SLACK)
            return log, _new(Decision, (True, max(left, 0), 0.0, end - now, limit))
        # Refused: walk the log from the oldest entry until enough has left.
        total = log.total
        at = expiries[-1]
        for expiry, entry_cost in zip(expiries, log.costs, strict=True):
            total -= entry_cost
            if total + cost <= limit:
                at = expiry
                break
        left = int(limit - log.total + _SLACK)
        return log, _new(Decision, (False, max(left, 0), wait_until(now, at), reset, limit))

    def peek(self, state: Any, now: float, cost: float) -> Decision:
        """The decision ``decide`` would make, on a copy of the log."""
        return self.decide(None if state is None else state.copy(), now, cost)[1]

    def idle(self, state: Any, now: float) -> bool:
        """A log is idle once its newest entry expired."""
        expiries = state.expiries
        return not expiries or bool(expiries[-1] <= now)
