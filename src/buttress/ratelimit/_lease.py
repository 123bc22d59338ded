"""Lease mode: a process takes units from Redis in blocks and serves decisions from them.

For very hot keys a round trip per decision is the bottleneck. With ``lease=`` a limiter keeps,
per key, a block of units taken from the shared state by one script call (``op = lease``) and
admits locally while the block lasts. The state in Redis counts the whole block as taken, so
the fleet's limit holds for what was *taken*; what a process admits later than it took can
exceed a window's limit, by at most the block it held:

    with N processes each holding at most B units, any window admits at most limit + N * B

(for a bucket: any interval of t seconds admits at most ``burst + rate * t + N * B``).

- The block adapts per key: it starts at one unit, doubles when a block is used up within
  ``FAST`` seconds, halves when one expires mostly unused, and never exceeds ``max_block``
  (``fraction`` of the limit; 1% by default, so N processes over-admit at most N% of the
  limit). A request larger than the block takes exactly its cost.
- A block is served for at most ``ttl`` seconds (a tenth of the window, between 10 ms and 1 s);
  after that its units are never admitted here. Unused units go back to Redis with the key's
  next refill (in the same script call) or at ``close()``; units of a key never asked again
  are left to expire with the key's state.
- A refill that Redis refuses is remembered: requests of that cost or more are refused
  locally until its ``retry_after`` has passed, so a process under overload does not ask
  Redis for every refusal.

This module is the bookkeeping only (no I/O): ``RedisRateLimiter`` asks it first, and sends
the refill it plans.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

from buttress.ratelimit._decision import Decision
from buttress.ratelimit._redis_core import DEFAULT_FRACTION, Grant

__all__ = ["DEFAULT_FRACTION", "Lease", "LeaseBook"]

FAST = 0.05
"""A block used up within this many seconds was too small: the next one is twice as large."""
_new = tuple.__new__
_SWEEP_MIN = 1024


class Lease:
    """One key's block: ``tokens`` left until ``expires``; ``busy`` marks a refill in flight
    (a ``threading.Event`` or an ``asyncio.Future`` that its waiters wait on)."""

    __slots__ = (
        "block",
        "busy",
        "denied_cost",
        "denied_until",
        "expires",
        "fetched",
        "remaining",
        "reset_at",
        "tag",
        "tokens",
    )

    def __init__(self) -> None:
        self.block = 1.0
        self.tokens = 0.0
        self.expires = -math.inf
        self.fetched = -math.inf
        self.remaining = 0
        self.reset_at = 0.0
        self.tag = "0"
        self.busy: Any = None
        self.denied_until = -math.inf
        self.denied_cost = math.inf


class LeaseBook:
    """The leases of one limiter in one process (call under the limiter's lock)."""

    __slots__ = ("leases", "limit", "max_block", "sweep_at", "ttl")

    def __init__(self, limit: int, fraction: float, period: float) -> None:
        self.limit = limit
        self.max_block = float(max(1, math.floor(limit * fraction)))
        self.ttl = min(1.0, max(0.01, period / 10))
        self.leases: dict[Hashable, Lease] = {}
        self.sweep_at = _SWEEP_MIN

    def serve(self, key: Hashable, cost: float, now: float) -> Decision | None:
        """Admit from the block, refuse while a refused refill's wait lasts, or None: Redis
        must be asked."""
        lease = self.leases.get(key)
        if lease is None:
            return None
        if now < lease.expires and cost <= lease.tokens:
            lease.tokens -= cost
            left = int(lease.remaining + lease.tokens + 1e-9)
            reset = lease.reset_at - now
            return _new(Decision, (True, left, 0.0, reset if reset > 0 else 0.0, self.limit))
        if cost >= lease.denied_cost and now < lease.denied_until:
            reset = lease.reset_at - now
            return _new(
                Decision,
                (False, 0, lease.denied_until - now, reset if reset > 0 else 0.0, self.limit),
            )
        return None

    def lease(self, key: Hashable, now: float) -> Lease:
        """The key's lease (a new, empty one the first time)."""
        lease = self.leases.get(key)
        if lease is None:
            lease = self.leases[key] = Lease()
            if len(self.leases) > self.sweep_at:
                self._sweep(now)
        return lease

    def plan(self, lease: Lease, cost: float, now: float) -> tuple[float, float, float, str]:
        """The refill to ask for: ``(want, need, give_back, tag)``; the block adapts here."""
        give = lease.tokens
        if now >= lease.expires:
            if give > lease.block / 2:  # mostly unused: too large for this key
                lease.block = max(1.0, math.floor(lease.block / 2))
        elif now - lease.fetched < FAST:  # used up quickly: too small
            lease.block = min(self.max_block, lease.block * 2)
        lease.tokens = 0.0
        return max(lease.block, cost), cost, give, lease.tag

    def settle(self, lease: Lease, cost: float, now: float, grant: Grant) -> Decision:
        """Take the refill's answer: keep the block less ``cost``, or remember the refusal."""
        if grant.granted > 0:
            lease.tokens = grant.granted - cost
            lease.expires = now + self.ttl
            lease.fetched = now
            lease.tag = grant.tag
            lease.remaining = grant.remaining
            lease.reset_at = now + grant.reset_after
            lease.denied_until = -math.inf
            lease.denied_cost = math.inf
            left = int(grant.remaining + lease.tokens + 1e-9)
            return _new(Decision, (True, left, 0.0, grant.reset_after, self.limit))
        lease.expires = -math.inf
        lease.remaining = grant.remaining
        lease.reset_at = now + grant.reset_after
        if grant.retry_after != math.inf:
            lease.denied_until = now + grant.retry_after
            lease.denied_cost = cost
        return _new(
            Decision,
            (False, grant.remaining, grant.retry_after, grant.reset_after, self.limit),
        )

    def give_back(self, lease: Lease) -> float:
        """Empty the block for a give-back; the units to return."""
        units, lease.tokens, lease.expires = lease.tokens, 0.0, -math.inf
        return units

    def held(self) -> int:
        """Keys with a lease."""
        return len(self.leases)

    def _sweep(self, now: float) -> None:
        """Forget expired leases with no refill in flight (their units expire in Redis)."""
        for key, lease in list(self.leases.items()):
            if now >= lease.expires and lease.busy is None and now >= lease.denied_until:
                del self.leases[key]
        self.sweep_at = max(_SWEEP_MIN, 2 * len(self.leases))
