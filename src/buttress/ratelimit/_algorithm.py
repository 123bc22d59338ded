"""The shape every rate-limit algorithm shares: options plus pure decisions over one key's state.

An algorithm holds only its options. A key's state is a small value (a float, a tuple, or for
the sliding log a ``LogState``) that the limiter keeps per key and hands back on the next call;
``None`` stands for a key never seen or idle long enough to be forgotten. The decisions take
``now`` (seconds on a monotonic clock) as an argument and never read a clock, sleep or log, so
the same math runs in memory, under ``ManualClock`` and, mirrored step by step, in Redis Lua
(docs/ratelimit.md writes each one down).
"""

from __future__ import annotations

from typing import Any

from buttress.ratelimit._decision import Decision

__all__ = ["Algorithm"]


class Algorithm:
    """Base of ``TokenBucket``, ``LeakyBucket``, ``GCRA``, ``FixedWindow``,
    ``SlidingWindowLog`` and ``SlidingWindowCounter``.

    ``capacity`` is the largest cost ever admitted, ``limit`` the quota in whole units (the
    ``RateLimit-Limit`` header) and ``period`` the seconds over which ``limit`` is granted.
    """

    __slots__ = ("capacity", "limit", "period")

    capacity: float
    limit: int
    period: float

    def decide(self, state: Any, now: float, cost: float) -> tuple[Any, Decision]:
        """Judge a request of ``cost`` at ``now``: the key's next state and the decision.

        A refused request leaves the state as it was (a log may drop expired entries, which
        changes nothing it decides)."""
        raise NotImplementedError

    def peek(self, state: Any, now: float, cost: float) -> Decision:
        """The decision ``decide`` would make, leaving ``state`` untouched."""
        return self.decide(state, now, cost)[1]

    def admit(self, states: dict[Any, Any], key: Any, now: float, cost: float) -> bool:
        """The fast path: decide for ``states[key]`` in place, return only whether allowed."""
        state, decision = self.decide(states.get(key), now, cost)
        if decision[0]:
            states[key] = state
        return decision[0]

    def idle(self, state: Any, now: float) -> bool:
        """Whether ``state`` decides exactly like ``None`` from ``now`` on (so can be dropped)."""
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """The algorithm's options as plain data."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The algorithm's name and options as plain data."""
        return {"algorithm": type(self).__name__, **self.options()}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Algorithm)
        return self.options() == other.options()

    def __hash__(self) -> int:
        return hash((type(self).__name__, *self.options().items()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({args})"
