"""``AdaptiveThrottle``: client-side adaptive throttling, from Google's SRE book ("Handling
Overload").

The client counts, over a sliding time window, the requests it attempted and those the backend
accepted, and refuses a new request locally with probability
``max(0, (requests - k * accepts) / (requests + 1))``. A healthy backend accepts everything and
the probability is 0; an overloaded one stops being hammered by requests it would refuse anyway.
Locally refused requests count as requests, so the probability keeps up while the backend is
down, and falls as soon as accepts come back.

The window is a ring of ``BUCKETS`` buckets: a count lasts more than ``window - window/BUCKETS``
seconds and at most ``window`` seconds.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

from buttress import _options
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._policy import Policy
from buttress.errors import ConfigError, LoadShedError
from buttress.ratelimit._concurrency import Episode, announce

__all__ = ["AdaptiveThrottle", "AdaptiveThrottleOptions", "ThrottleSnapshot"]

P = ParamSpec("P")
T = TypeVar("T")

BUCKETS = 10
"""The window is split into this many buckets; counts expire a bucket at a time."""

_NEVER_COUNTED: tuple[type[BaseException], ...] = (asyncio.CancelledError, *_options.CANCELLATION)


def rejection_probability(requests: int, accepts: int, k: float) -> float:
    """The SRE book's client-side rejection probability: ``max(0, (r - k*a) / (r + 1))``.

    >>> rejection_probability(100, 100, 2.0), rejection_probability(100, 10, 2.0)
    (0.0, 0.792...)
    """
    return max(0.0, (requests - k * accepts) / (requests + 1))


@dataclass(frozen=True, slots=True)
class AdaptiveThrottleOptions:
    """An adaptive throttle's options; see ``AdaptiveThrottle``."""

    k: float
    window: float
    on: _options.ExceptionSpec
    on_result: Callable[[Any], bool] | None


@dataclass(frozen=True, slots=True)
class ThrottleSnapshot:
    """Requests and accepts in the window, the local rejection probability they give, and the
    requests refused locally so far."""

    name: str
    requests: int
    accepts: int
    probability: float
    rejected: int
    shedding: bool


class AdaptiveThrottle(Policy):
    """Refuse calls locally, with ``LoadShedError``, while the backend rejects too many of them.

    ``AdaptiveThrottle(k=2.0, *, window=120.0, on=Exception, on_result=None, name="throttle",
    clock=None, rng=None)``. A call counts as accepted unless it raises an error of ``on=`` or
    ``on_result(result)`` is true; cancellations are not counted at all. ``k`` >= 1: the backend
    may reject up to ``1 - 1/k`` of the requests before the client starts throttling (half for
    the default 2). ``window`` is in seconds (or a ``timedelta``); ``rng`` (a ``random.Random``)
    makes the draws repeatable.
    """

    __slots__ = (
        "_accepts",
        "_clock",
        "_episode",
        "_head",
        "_k",
        "_lock",
        "_on",
        "_on_result",
        "_requests",
        "_rng",
        "_slot_accepts",
        "_slot_requests",
        "_width",
        "name",
        "options",
        "rejected",
    )

    options: AdaptiveThrottleOptions

    def __init__(
        self,
        k: float = 2.0,
        *,
        window: float | timedelta = 120.0,
        on: _options.ExceptionSpec = Exception,
        on_result: Callable[[Any], bool] | None = None,
        name: str = "throttle",
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        k = _options.number("k", k, minimum=1)
        window = _options.duration("window", window)
        self._on = _options.exception_filter("on", on)
        if on_result is not None and not callable(on_result):
            raise ConfigError("on_result", on_result, "must be a predicate on the result")
        if rng is not None and not isinstance(rng, random.Random):
            raise ConfigError("rng", rng, "must be a random.Random")
        self.name = name
        self.options = AdaptiveThrottleOptions(k, window, on, on_result)
        self.rejected = 0
        self._k = k
        self._on_result = on_result
        self._width = window / BUCKETS
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._rng = random.Random() if rng is None else rng
        self._lock = threading.Lock()
        self._episode = Episode()
        self._slot_requests = [0] * BUCKETS
        self._slot_accepts = [0] * BUCKETS
        self._requests = 0
        self._accepts = 0
        self._head = math.floor(self._clock.monotonic() / self._width)

    def _roll(self, now: float) -> int:
        """Drop the buckets that left the window; return the slot of the current bucket."""
        index = math.floor(now / self._width)
        head = self._head
        if index > head:
            requests, accepts = self._slot_requests, self._slot_accepts
            if index - head >= BUCKETS:
                requests[:] = [0] * BUCKETS
                accepts[:] = [0] * BUCKETS
                self._requests = self._accepts = 0
            else:
                for i in range(head + 1, index + 1):
                    slot = i % BUCKETS
                    self._requests -= requests[slot]
                    self._accepts -= accepts[slot]
                    requests[slot] = accepts[slot] = 0
            self._head = index
        return self._head % BUCKETS

    @property
    def probability(self) -> float:
        """The probability that the next call is refused locally."""
        with self._lock:
            self._roll(self._clock.monotonic())
            return rejection_probability(self._requests, self._accepts, self._k)

    def snapshot(self) -> ThrottleSnapshot:
        """Requests and accepts in the window, the probability, and local rejections so far."""
        with self._lock:
            now = self._clock.monotonic()
            self._roll(now)
            return ThrottleSnapshot(
                self.name,
                self._requests,
                self._accepts,
                rejection_probability(self._requests, self._accepts, self._k),
                self.rejected,
                self._episode.current(now),
            )

    def _admit(self) -> None:
        """Pass, or count a local rejection and raise ``LoadShedError``."""
        ended: int | None = None
        started = refused = False
        with self._lock:
            now = self._clock.monotonic()
            slot = self._roll(now)
            requests = self._requests
            p = (requests - self._k * self._accepts) / (requests + 1)
            if p > 0 and self._rng.random() < p:
                refused = True
                self._slot_requests[slot] += 1
                self._requests = requests + 1
                self.rejected += 1
                started = self._episode.shed(now)
            elif self._episode.active:
                ended = self._episode.admitted(now)
        if refused:
            if started:
                announce(self.name, self._clock, True)
            raise LoadShedError(self.name)
        if ended is not None:
            announce(self.name, self._clock, False, ended)

    def _record(self, accepted: bool) -> None:
        with self._lock:
            slot = self._roll(self._clock.monotonic())
            self._slot_requests[slot] += 1
            self._requests += 1
            if accepted:
                self._slot_accepts[slot] += 1
                self._accepts += 1

    def _judge(self, exc: BaseException) -> None:
        if not isinstance(exc, _NEVER_COUNTED):
            self._record(not self._on(exc))

    def _accepted(self, result: object) -> bool:
        on_result = self._on_result
        return on_result is None or not on_result(result)

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` unless refused locally; count how the backend answered."""
        self._admit()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._judge(exc)
            raise
        self._record(self._accepted(result))
        return result

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` unless refused locally; count how the backend answered."""
        self._admit()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._judge(exc)
            raise
        self._record(self._accepted(result))
        return result

    def __repr__(self) -> str:
        return f"AdaptiveThrottle({self.name!r}, k={self._k:g})"
