"""``ConcurrencyLimiter``: shed calls beyond N in flight, and the shedding episodes they make.

Like a ``Bulkhead`` without a queue, but a refusal is a ``LoadShedError``: the service is
protecting itself and the caller should go elsewhere or answer 503. Rejections are counted, not
evented one by one; what is evented is a shedding *episode*: ``LoadShedChanged`` when the first
call is shed, and again at the first admission ``QUIET`` seconds (1 s) after the last one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar, ParamSpec, TypeVar

from buttress import _options
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._policy import Policy
from buttress.errors import LoadShedError
from buttress.events import Event, emit, wants

__all__ = [
    "ConcurrencyLimiter",
    "ConcurrencyLimiterOptions",
    "ConcurrencySnapshot",
    "LoadShedChanged",
]

P = ParamSpec("P")
T = TypeVar("T")

QUIET = 1.0
"""Seconds without a rejection after which the next admission ends a shedding episode."""


@dataclass(frozen=True, slots=True)
class LoadShedChanged(Event):
    """``source`` started shedding load (``shedding=True``), or stopped after shedding ``shed``
    calls (``shedding=False``)."""

    kind: ClassVar[str] = "loadshed.changed"
    level: ClassVar[int] = logging.WARNING

    shedding: bool
    shed: int = 0

    def message(self) -> str:
        if self.shedding:
            return f"load shedding {self.source!r}: started"
        return f"load shedding {self.source!r}: stopped after shedding {self.shed} calls"


class Episode:
    """Whether a policy is shedding: begins at a rejection, ends at the first admission
    ``QUIET`` seconds after the last rejection. Not thread-safe: callers hold their lock."""

    __slots__ = ("active", "count", "last")

    def __init__(self) -> None:
        self.active = False
        self.count = 0
        self.last = 0.0

    def shed(self, now: float) -> bool:
        """Record a rejection at ``now``; True when it starts an episode."""
        self.last = now
        self.count += 1
        if self.active:
            return False
        self.active = True
        self.count = 1
        return True

    def admitted(self, now: float) -> int | None:
        """Record an admission at ``now``; the episode's count when this ends it, else None."""
        if not self.active or now - self.last < QUIET:
            return None
        self.active = False
        count, self.count = self.count, 0
        return count

    def current(self, now: float) -> bool:
        """Whether a rejection happened less than ``QUIET`` seconds ago."""
        return self.active and now - self.last < QUIET


def announce(name: str, clock: Clock, shedding: bool, shed: int = 0) -> None:
    """Emit ``LoadShedChanged`` if anyone listens."""
    if wants(LoadShedChanged):
        emit(LoadShedChanged(name, clock.time(), shedding, shed))


@dataclass(frozen=True, slots=True)
class ConcurrencyLimiterOptions:
    """A concurrency limiter's options; see ``ConcurrencyLimiter``."""

    max: int


@dataclass(frozen=True, slots=True)
class ConcurrencySnapshot:
    """Calls in flight, the limit, calls shed so far, and whether shedding is going on."""

    name: str
    in_flight: int
    limit: int
    rejected: int
    shedding: bool


class SlotLimiter(Policy):
    """What the concurrency limiters share: a slot count under a lock, and shedding episodes."""

    __slots__ = (
        "_clock",
        "_episode",
        "_in_flight",
        "_limit",
        "_lock",
        "name",
        "options",
        "rejected",
    )

    def _init(self, name: str, limit: int, clock: Clock | None) -> None:
        self.name = name
        self.rejected = 0
        self._limit = limit
        self._in_flight = 0
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._lock = threading.Lock()
        self._episode = Episode()

    @property
    def in_flight(self) -> int:
        """Calls running right now."""
        return self._in_flight

    @property
    def limit(self) -> int:
        """The most calls admitted at once, right now."""
        return self._limit

    def _admit(self) -> int:
        """Take a slot and return the calls in flight before this one, or raise LoadShedError."""
        lock = self._lock
        lock.acquire()
        in_flight = self._in_flight
        if in_flight < self._limit:
            self._in_flight = in_flight + 1
            episode = self._episode
            ended = episode.admitted(self._clock.monotonic()) if episode.active else None
            lock.release()
            if ended is not None:
                announce(self.name, self._clock, False, ended)
            return in_flight
        self.rejected += 1
        started = self._episode.shed(self._clock.monotonic())
        lock.release()
        if started:
            announce(self.name, self._clock, True)
        raise LoadShedError(self.name)

    def _shedding(self) -> bool:
        return self._episode.current(self._clock.monotonic())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, in_flight={self._in_flight}/{self._limit})"


class ConcurrencyLimiter(SlotLimiter):
    """Run at most ``max`` calls at once; shed the rest at once with ``LoadShedError``.

    ``ConcurrencyLimiter(max, *, name="concurrency", clock=None)``. Nothing waits: a call that
    finds ``max`` calls in flight is refused without running (use a ``Bulkhead`` to queue).
    Threads (``call``) and asyncio tasks (``acall``) may share one limiter.
    """

    __slots__ = ()

    options: ConcurrencyLimiterOptions

    def __init__(self, max: int, *, name: str = "concurrency", clock: Clock | None = None) -> None:
        limit = _options.integer("max", max, minimum=1)
        self.options = ConcurrencyLimiterOptions(limit)
        self._init(name, limit, clock)

    def snapshot(self) -> ConcurrencySnapshot:
        """Calls in flight, the limit, rejections so far, and whether it is shedding now."""
        with self._lock:
            return ConcurrencySnapshot(
                self.name, self._in_flight, self._limit, self.rejected, self._shedding()
            )

    def _release(self) -> None:
        lock = self._lock
        lock.acquire()
        self._in_flight -= 1
        lock.release()

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` if fewer than ``max`` calls are in flight."""
        self._admit()
        try:
            return fn(*args, **kwargs)
        finally:
            self._release()

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` if fewer than ``max`` calls are in flight."""
        self._admit()
        try:
            return await fn(*args, **kwargs)
        finally:
            self._release()
