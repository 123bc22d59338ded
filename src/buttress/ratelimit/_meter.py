"""Token bucket, leaky bucket and GCRA: one meter, kept as one float per key.

The three classic names describe the same meter (ITU-T I.371 shows the leaky bucket and GCRA
are equivalent; a token bucket is the same bucket counted the other way round). Each keeps a
single timestamp per key, ``tat``: the time at which the bucket is whole again (token bucket:
full; leaky bucket: empty; GCRA: the theoretical arrival time). With ``T = 1 / rate``,
``tau = capacity * T`` and ``slack(x) = (capacity + 2) * ulp(x)``, a request of ``cost`` at
``now`` is decided by::

    if cost > capacity:             refused forever (retry_after = inf)
    elif tat is None or tat <= now: allowed, tat = now + cost * T
    else:
        new = tat + cost * T
        at = new - tau - slack(new)
        if now >= at:               allowed, tat = new
        else:                       refused, retry_after = min(at, tat) - now

``slack`` absorbs the rounding of adding ``T`` to a large timestamp once per admitted request
(at most ``capacity`` times in a burst, half an ulp each), so a full bucket always admits its
whole burst at one instant; it lets in at most ``(capacity + 2) * ulp(now) * rate`` units more
than exact arithmetic would (below one unit while ``rate * capacity * ulp(now) < 1``; after
100 days of uptime ``ulp(now)`` is 2 ns). A state with ``tat <= now`` is a whole bucket and is
dropped: one float per active key.
"""

from __future__ import annotations

import math
from typing import Any

from buttress.errors import ConfigError
from buttress.ratelimit._algorithm import Algorithm
from buttress.ratelimit._decision import NEVER, Decision, wait_until
from buttress.ratelimit._rate import parse_rate, positive

__all__ = ["GCRA", "LeakyBucket", "Meter", "TokenBucket"]

_new = tuple.__new__
_NEG_INF = -math.inf
_ulp = math.ulp
# Whole units left are floored; a rounding error of a few ulps must not cost a unit.
_SLACK = 1e-9


class Meter(Algorithm):
    """The shared meter; subclasses only name their options."""

    __slots__ = ("_units", "interval", "rate", "tau")

    def __init__(self, rate: float | str, capacity: float, capacity_field: str) -> None:
        self.rate = parse_rate("rate", rate)
        self.capacity = positive(capacity_field, capacity, minimum=1.0)
        self.interval = 1.0 / self.rate
        self.tau = self.capacity * self.interval
        if not 0.0 < self.tau < math.inf:
            expected = f"must fill in a finite time > 0 at rate {self.rate:g}/s"
            raise ConfigError(capacity_field, capacity, expected)
        self.limit = int(self.capacity)
        self.period = self.tau
        self._units = self.capacity + 2.0

    def threshold(self, new: float) -> float:
        """The earliest time at which the bucket can reach ``new`` (see the module docstring)."""
        return new - self.tau - self._units * _ulp(new)

    def _left(self, tat: float, now: float) -> int:
        left = int((self.tau - (tat - now)) * self.rate + _SLACK)
        return left if left > 0 else 0

    def decide(self, state: Any, now: float, cost: float) -> tuple[Any, Decision]:
        """See the module docstring; the state is ``tat`` (a float) or None."""
        tat = _NEG_INF if state is None else state
        limit = self.limit
        if cost > self.capacity:
            whole = tat <= now
            left = limit if whole else self._left(tat, now)
            return state, _new(Decision, (False, left, NEVER, 0.0 if whole else tat - now, limit))
        if tat <= now:
            new = now + cost * self.interval
        else:
            new = tat + cost * self.interval
            if now < new - self.tau:  # refused, unless within the rounding slack
                at = self.threshold(new)
                if now < at:
                    # A whole bucket (tat <= now) admits too: the earliest time is the sooner.
                    retry = wait_until(now, at if at < tat else tat)
                    left = self._left(tat, now)
                    return state, _new(Decision, (False, left, retry, tat - now, limit))
        return new, _new(Decision, (True, self._left(new, now), 0.0, new - now, limit))

    def admit(self, states: dict[Any, Any], key: Any, now: float, cost: float) -> bool:
        """``decide`` without building a ``Decision``, updating ``states[key]`` in place."""
        tat = states.get(key, _NEG_INF)
        if tat <= now:
            if cost > self.capacity:
                return False
            states[key] = now + cost * self.interval
            return True
        new = tat + cost * self.interval
        if cost > self.capacity or (now < new - self.tau and now < self.threshold(new)):
            return False
        states[key] = new
        return True

    def idle(self, state: Any, now: float) -> bool:
        """A bucket is idle once it is whole again (``tat <= now``)."""
        return bool(state <= now)


class TokenBucket(Meter):
    """A bucket of ``burst`` tokens refilled at ``rate`` per second; a request takes ``cost``.

    ``TokenBucket(rate, burst)``: ``rate`` is a number per second or text like
    ``"100/minute"``; ``burst`` (>= 1) is the bucket's size, the most admitted at once. Starts
    full. Admits at most ``burst + rate * t`` in any interval of ``t`` seconds.
    """

    __slots__ = ()

    def __init__(self, rate: float | str, burst: float) -> None:
        super().__init__(rate, burst, "burst")

    def options(self) -> dict[str, Any]:
        """``rate`` (per second) and ``burst``."""
        return {"rate": self.rate, "burst": self.capacity}


class LeakyBucket(Meter):
    """A bucket of size ``capacity`` leaking at ``rate`` per second; a request pours ``cost``.

    ``LeakyBucket(rate, capacity)``: the leaky bucket as a meter (policing): a request that
    would overflow is refused. The same decisions as ``TokenBucket(rate, capacity)``; to
    smooth requests to the rate (the bucket as a queue), wait with ``acquire``/``aacquire``.
    """

    __slots__ = ()

    def __init__(self, rate: float | str, capacity: float) -> None:
        super().__init__(rate, capacity, "capacity")

    def options(self) -> dict[str, Any]:
        """``rate`` (per second) and ``capacity``."""
        return {"rate": self.rate, "capacity": self.capacity}


class GCRA(Meter):
    """The generic cell rate algorithm: one request per ``1/rate`` seconds, ``burst`` at once.

    ``GCRA(rate, burst)``: the theoretical arrival time moves by ``cost / rate`` per admitted
    request; a request is admitted while it is at most ``burst / rate`` seconds ahead of now.
    ``burst=1`` spaces requests evenly. The same decisions as ``TokenBucket(rate, burst)``.
    """

    __slots__ = ()

    def __init__(self, rate: float | str, burst: float) -> None:
        super().__init__(rate, burst, "burst")

    def options(self) -> dict[str, Any]:
        """``rate`` (per second) and ``burst``."""
        return {"rate": self.rate, "burst": self.capacity}
