"""Fixed window and sliding window counter: counts per window, a tuple per key.

Windows start at a key's first admitted request (not on a shared grid), so keys do not all
reset at the same instant. ``W`` is the window in seconds.

Fixed window, state ``(end, count)``::

    if cost > limit:                     refused forever
    elif state is None or now >= end:    allowed, state = (now + W, cost)
    elif count + cost <= limit:          allowed, count += cost
    else:                                refused, retry_after = end - now

Sliding window counter (the approximation of Cloudflare's and nginx's), state
``(end, prev, curr)``: ``curr`` counts the current window ``[end - W, end)``, ``prev`` the one
before. First the windows roll to ``now``::

    state is None or now >= end + W  ->  (now + W, 0, 0)     (both windows are empty)
    end <= now < end + W             ->  (end + W, curr, 0)  (the next window)

then, with ``room = limit - curr - cost``, the request is admitted when the estimated count
``prev * (end - now) / W + curr`` leaves room for it, decided in the equivalent form::

    if cost > limit:                               refused forever
    elif room >= 0 and (prev <= room or now >= end - room * W / prev):
                                                   allowed, curr += cost
    else:                                          refused

so the refusal's ``retry_after`` is the threshold ``end - room * W / prev`` (or, when
``room < 0``, the same threshold in the next window, where ``prev`` is today's ``curr``).
"""

from __future__ import annotations

import math
from typing import Any

from buttress import _options
from buttress.ratelimit._algorithm import Algorithm
from buttress.ratelimit._decision import NEVER, Decision, wait_until
from buttress.ratelimit._rate import parse_period

__all__ = ["FixedWindow", "SlidingWindowCounter"]

_new = tuple.__new__
_SLACK = 1e-9
_nextafter = math.nextafter


def _whole(value: float) -> int:
    left = int(value + _SLACK)
    return left if left > 0 else 0


class FixedWindow(Algorithm):
    """At most ``limit`` per window of ``window`` seconds, counted from the key's first request.

    ``FixedWindow(limit, window)``: ``limit`` is an integer >= 1; ``window`` is seconds, a
    ``timedelta`` or text like ``"1 minute"``. Cheap and exact per window, but up to
    ``2 * limit`` can pass around a window's end.
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
        """See the module docstring; the state is ``(end, count)`` or None."""
        limit = self.limit
        if state is None or now >= state[0]:
            if cost > limit:
                return state, _new(Decision, (False, limit, NEVER, 0.0, limit))
            new = (now + self.period, cost)
            return new, _new(Decision, (True, _whole(limit - cost), 0.0, new[0] - now, limit))
        end, count = state
        if cost > limit:
            return state, _new(Decision, (False, _whole(limit - count), NEVER, end - now, limit))
        if count + cost <= limit:
            count += cost
            return (end, count), _new(
                Decision, (True, _whole(limit - count), 0.0, end - now, limit)
            )
        retry = wait_until(now, end)
        return state, _new(Decision, (False, _whole(limit - count), retry, end - now, limit))

    def admit(self, states: dict[Any, Any], key: Any, now: float, cost: float) -> bool:
        """``decide`` without building a ``Decision``, updating ``states[key]`` in place."""
        state = states.get(key)
        if cost > self.limit:
            return False
        if state is None or now >= state[0]:
            states[key] = (now + self.period, cost)
            return True
        count = state[1] + cost
        if count <= self.limit:
            states[key] = (state[0], count)
            return True
        return False

    def idle(self, state: Any, now: float) -> bool:
        """A window is idle once it has ended."""
        return bool(now >= state[0])


class SlidingWindowCounter(Algorithm):
    """About ``limit`` per sliding window of ``window`` seconds, from two window counts.

    ``SlidingWindowCounter(limit, window)``: estimates the count of the last ``window``
    seconds as the current window's count plus the previous window's, weighted by how much of
    it still overlaps. Never admits more than ``limit`` in one window of its own grid; against
    an exact sliding log it admits at most ``limit`` more in any sliding window (measured and
    documented in docs/ratelimit.md). Constant memory: three numbers per key.
    """

    __slots__ = ()

    def __init__(self, limit: int, window: float | str | Any) -> None:
        self.limit = _options.integer("limit", limit, minimum=1)
        self.capacity = float(self.limit)
        self.period = parse_period("window", window)

    def options(self) -> dict[str, Any]:
        """``limit`` and ``window`` (seconds)."""
        return {"limit": self.limit, "window": self.period}

    def _roll(self, state: Any, now: float) -> tuple[float, float, float]:
        if state is None:
            return (now + self.period, 0.0, 0.0)
        end = state[0]
        if now < end:
            return state  # type: ignore[no-any-return]
        nxt = end + self.period
        if now < nxt:
            return (nxt, state[2], 0.0)
        return (now + self.period, 0.0, 0.0)

    def _fits(self, window: tuple[float, float, float], now: float, cost: float) -> bool:
        end, prev, curr = window
        room = self.limit - curr - cost
        return room >= 0 and (prev <= room or now >= end - room * self.period / prev)

    def _estimate(self, window: tuple[float, float, float], now: float) -> float:
        end, prev, curr = window
        return prev * (end - now) / self.period + curr

    def decide(self, state: Any, now: float, cost: float) -> tuple[Any, Decision]:
        """See the module docstring; the state is ``(end, prev, curr)`` or None."""
        limit = self.limit
        window = self._roll(state, now)
        end, prev, curr = window
        if cost <= limit and self._fits(window, now, cost):
            new = (end, prev, curr + cost)
            reset = end + self.period - now
            left = _whole(limit - self._estimate(new, now))
            return new, _new(Decision, (True, left, 0.0, reset, limit))
        left = _whole(limit - self._estimate(window, now))
        reset = (end + self.period if curr else end if prev else now) - now
        if cost > limit:
            return state, _new(Decision, (False, left, NEVER, reset, limit))
        retry = wait_until(now, self._earliest(state, window, now, cost))
        return state, _new(Decision, (False, left, retry, reset, limit))

    def _earliest(
        self, state: Any, window: tuple[float, float, float], now: float, cost: float
    ) -> float:
        """The first time at which ``cost`` fits (the state rolled to ``now`` is ``window``)."""
        end, prev, curr = window
        room = self.limit - curr - cost
        if room >= 0:
            at = end - room * self.period / prev
        else:  # not before the next window, where today's count is the previous one
            nxt = (end + self.period, curr, 0.0)
            room = self.limit - 0.0 - cost
            at = max(end, nxt[0] - room * self.period / curr)
        # The threshold is computed with the expressions the decision uses, so it is exact;
        # these steps only guard the roll between windows against a rounding surprise.
        for _ in range(8):
            if self._fits(self._roll(state, at), at, cost):
                break
            at = _nextafter(at, end + 2 * self.period)
        else:
            return end + self.period
        return at

    def admit(self, states: dict[Any, Any], key: Any, now: float, cost: float) -> bool:
        """``decide`` without building a ``Decision``, updating ``states[key]`` in place."""
        window = self._roll(states.get(key), now)
        if cost > self.limit or not self._fits(window, now, cost):
            return False
        states[key] = (window[0], window[1], window[2] + cost)
        return True

    def idle(self, state: Any, now: float) -> bool:
        """Both windows are empty once a whole window passed after the current one."""
        return bool(now >= state[0] + self.period)
