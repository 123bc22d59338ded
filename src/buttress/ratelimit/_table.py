"""The per-key state table of a rate limiter, its lock, and the lock-free path of its owner.

Every decision on the table takes the limiter's lock, with one exception that keeps the
common case cheap: the first thread to decide becomes the table's owner, and while no other
thread has decided and no caller waits, the owner decides without the lock (an asyncio
service decides on its event loop's thread only). The first decision of a second thread turns
that off for good: it sets ``_fast`` to ``_SHARED`` under the lock, then waits while the owner
is inside an unlocked decision. The owner announces one in ``_busy`` *before* it re-reads
``_fast``, so either it sees ``_SHARED`` and takes the lock, or the second thread sees it busy
and waits (Dekker's handshake, sound under the GIL; free-threaded builds always lock).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from buttress._clock import Clock
from buttress.errors import ConfigError
from buttress.ratelimit._algorithm import Algorithm
from buttress.ratelimit._decision import Decision
from buttress.ratelimit._meter import Meter

if TYPE_CHECKING:
    from buttress.ratelimit._waiting import Waiter

__all__ = ["KeyTable", "bad_cost", "get_ident"]

get_ident = threading.get_ident
_UNCLAIMED = 0  # thread idents are never 0 or -1
_SHARED = -1
_GIL = bool(getattr(sys, "_is_gil_enabled", lambda: True)())
_SWEEP_MIN = 1024  # below this many keys, idle ones are not worth a sweep


def bad_cost(cost: object) -> ConfigError:
    """The error for a cost that is not a number > 0."""
    return ConfigError("cost", cost, "must be a number > 0")


class KeyTable:
    """State per key, the lock, counters and ownership; ``RateLimiter`` builds on it."""

    __slots__ = (
        "_admit",
        "_busy",
        "_capacity",
        "_clock",
        "_decide",
        "_fast",
        "_interval",
        "_lock",
        "_meter",
        "_monotonic",
        "_owner",
        "_queues",
        "_states",
        "_sweep_at",
        "algorithm",
        "allowed",
        "name",
        "refused",
    )

    name: str
    algorithm: Algorithm
    allowed: int
    refused: int
    _clock: Clock
    _monotonic: Callable[[], float]
    _lock: threading.Lock
    _states: dict[Hashable, Any]
    _queues: dict[Hashable, deque[Waiter]]
    _meter: Meter | None
    _capacity: float
    _interval: float
    _admit: Callable[[dict[Hashable, Any], Hashable, float, float], bool]
    _decide: Callable[[Any, float, float], tuple[Any, Decision]]
    _sweep_at: int
    _owner: int
    _fast: int
    _busy: bool

    def _init_table(self, name: str, algorithm: Algorithm, clock: Clock) -> None:
        self.name = name
        self.algorithm = algorithm
        self.allowed = 0
        self.refused = 0
        self._clock = clock
        self._monotonic = clock.monotonic
        self._lock = threading.Lock()
        self._states = {}
        self._queues = {}
        self._meter = meter = algorithm if isinstance(algorithm, Meter) else None
        # A meter's fields, read by the lock-free path (an attribute read less each).
        self._capacity = meter.capacity if meter is not None else 0.0
        self._interval = meter.interval if meter is not None else 0.0
        self._admit = algorithm.admit
        self._decide = algorithm.decide
        self._sweep_at = _SWEEP_MIN
        self._owner = _UNCLAIMED if _GIL else _SHARED
        self._fast = _UNCLAIMED  # the thread that may decide without the lock, if any
        self._busy = False

    def _claim(self, me: int) -> None:
        """Under the lock, for a thread about to decide: make it the owner if there is none;
        if there is another, share the table from now on (see the module docstring)."""
        owner = self._owner
        if owner in (me, _SHARED):
            return
        if owner == _UNCLAIMED:
            self._owner = me
            if not self._queues:
                self._fast = me
            return
        self._owner = self._fast = _SHARED
        while self._busy:  # the owner finishes its unlocked decision in a few bytecodes
            time.sleep(0)

    def _queues_changed(self) -> None:
        """Under the lock, after a queue was created or removed: while callers wait, even the
        owner decides under the lock (newcomers must see the queue)."""
        self._fast = self._owner if not self._queues and self._owner > 0 else _UNCLAIMED

    def _deciding(self) -> None:
        """Under the lock, before a decision: claim or share the table (see ``_claim``)."""
        me = get_ident()
        if self._owner != me:
            self._claim(me)

    def _admit_locked(self, key: Hashable, cost: float, now: float, count: bool) -> bool:
        """The general admission, under the lock: none while callers wait on ``key``; counts
        the refusal too when ``count``."""
        lock = self._lock
        lock.acquire()
        try:
            self._deciding()
            if not cost > 0:
                raise bad_cost(cost)
            if not self._queues or key not in self._queues:
                states = self._states
                if self._admit(states, key, now, cost):
                    self.allowed += 1
                    if len(states) > self._sweep_at:
                        self._sweep(now)
                    return True
            if count:
                self.refused += 1
            return False
        finally:
            lock.release()

    def _take(self, key: Hashable, state: Any, now: float) -> None:
        """Under the lock: store an admitted request's state and count it."""
        states = self._states
        states[key] = state
        self.allowed += 1
        if len(states) > self._sweep_at:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Drop idle keys (states equivalent to none), when the table has doubled."""
        states = self._states
        idle = self.algorithm.idle
        queues = self._queues
        # A copy, so that a concurrent reset() cannot change the table under the iteration.
        for key, state in list(states.items()):
            if idle(state, now) and key not in queues:
                states.pop(key, None)
        self._sweep_at = max(_SWEEP_MIN, 2 * len(states))
