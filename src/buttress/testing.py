"""Helpers for tests, yours and ours: a clock you advance by hand and a listener that records.

>>> from buttress.testing import ManualClock
>>> clock = ManualClock()
>>> clock.sleep(2.5)
>>> clock.monotonic(), clock.sleeps
(2.5, [2.5])
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TypeVar

from buttress.events import Event, add_listener, remove_listener

__all__ = ["ManualClock", "RecordingListener"]

E = TypeVar("E", bound=Event)


class _ManualTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], object]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told to: ``advance()``, ``sleep()`` or ``asleep()``.

    Sleeps advance virtual time at once and are recorded in ``sleeps``; timers scheduled with
    ``call_at`` (async timeouts, queue waits) run when the time passes their deadline.
    """

    def __init__(self, start: float = 0.0, *, wall: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._wall_offset = float(wall) - float(start)
        self._lock = threading.RLock()
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._seq = itertools.count()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """The current virtual time."""
        return self._now

    def time(self) -> float:
        """Virtual wall-clock time (``wall`` at ``start``)."""
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and run the timers that fall due, in order."""
        if seconds < 0:
            raise ValueError(f"seconds: must be >= 0, got {seconds!r}")
        with self._lock:
            target = self._now + seconds
            while self._timers and self._timers[0][0] <= target:
                when, _, timer = heapq.heappop(self._timers)
                self._now = max(self._now, when)
                if not timer.cancelled:
                    timer.callback()
            self._now = target

    def sleep(self, seconds: float) -> None:
        """Record the sleep and advance time by it, without blocking."""
        self.sleeps.append(seconds)
        if seconds > 0:
            self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        """Record the sleep, advance time by it, and yield to the event loop once."""
        self.sleeps.append(seconds)
        if seconds > 0:
            self.advance(seconds)
        await asyncio.sleep(0)

    def call_at(self, when: float, callback: Callable[[], object]) -> _ManualTimer:
        """Run ``callback`` when virtual time reaches ``when``."""
        timer = _ManualTimer(callback)
        with self._lock:
            heapq.heappush(self._timers, (when, next(self._seq), timer))
        return timer

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        """Return at once if ``event`` is set; otherwise let ``timeout`` pass in virtual time."""
        if event.is_set():
            return True
        if timeout is None:
            return event.wait()
        self.sleep(timeout)
        return event.is_set()

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r})"


class RecordingListener:
    """Records every event; use as a context manager to listen only inside the block.

    >>> from buttress import CircuitBreaker
    >>> with RecordingListener() as events:
    ...     CircuitBreaker("db").trip()
    >>> events.kinds()
    ['breaker.state_changed']
    """

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        """The ``kind`` of each recorded event, in order."""
        return [event.kind for event in self.events]

    def of(self, event_type: type[E]) -> list[E]:
        """The recorded events of one type."""
        return [event for event in self.events if isinstance(event, event_type)]

    def clear(self) -> None:
        """Forget what was recorded."""
        self.events.clear()

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def __enter__(self) -> RecordingListener:
        add_listener(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        remove_listener(self)
