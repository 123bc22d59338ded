"""``Decision``: what a rate limiter answered, and the exact wait until a refused request fits."""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = ["NEVER", "Decision", "wait_until"]

NEVER = math.inf
"""``retry_after`` of a request that can never be admitted (its cost exceeds the capacity)."""

_ulp = math.ulp
_nextafter = math.nextafter
_INF = math.inf


class Decision(NamedTuple):
    """A limiter's answer: ``allowed``, ``remaining`` (whole units left), ``retry_after``
    (seconds until this request would be admitted: 0.0 when allowed, ``math.inf`` when its
    cost exceeds the capacity), ``reset_after`` (seconds until the quota is whole again) and
    ``limit`` (the quota, for ``RateLimit-Limit``). True in a boolean context when allowed."""

    allowed: bool
    remaining: int
    retry_after: float
    reset_after: float
    limit: int

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def exceeds_capacity(self) -> bool:
        """The cost is larger than the limiter's capacity: no wait will ever admit it."""
        return self.retry_after == _INF

    @property
    def reason(self) -> str:
        """``"allowed"``, ``"rate limited"`` or ``"cost exceeds capacity"``."""
        if self.allowed:
            return "allowed"
        return "cost exceeds capacity" if self.retry_after == _INF else "rate limited"


def wait_until(now: float, at: float) -> float:
    """The wait from ``now`` to ``at``, such that ``now + wait`` is ``at`` in floating point.

    A clock at ``now`` advanced by ``wait`` reads ``now + wait`` (rounded): ``at - now`` may
    land an ulp off, so it is nudged until the sum is ``at`` (or the first float after it,
    when ``at`` cannot be reached from ``now``), never early.
    """
    wait = at - now
    if wait <= 0.0:
        return 0.0
    if now + wait < at:
        step = max(_ulp(at), _ulp(wait))
        while now + wait < at:
            wait += step
    for _ in range(4):  # at most a few ulps above: step back while the sum still reaches at
        shorter = _nextafter(wait, 0.0)
        if now + shorter < at:
            break
        wait = shorter
    return wait
