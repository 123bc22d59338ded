"""Clocks: the one place buttress reads time, sleeps and schedules timers.

Every policy takes ``clock=``; decision cores receive ``now`` from the shells and never read
a clock. Besides the four methods of the architecture (``monotonic``, ``time``, ``sleep``,
``asleep``), a clock schedules timer callbacks inside a running event loop (``call_at``, used
by async timeouts and queue waits) and waits on a ``threading.Event`` (``wait``, used by sync
queue waits), so that ``buttress.testing.ManualClock`` can drive those in virtual time too.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "TimerHandle"]


class TimerHandle(Protocol):
    """A scheduled callback that can still be cancelled."""

    def cancel(self) -> None:
        """Stop the callback from running; does nothing once it ran."""


@runtime_checkable
class Clock(Protocol):
    """What buttress needs from time: read it, sleep, schedule and wait."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch, for display and persistence."""

    def sleep(self, seconds: float) -> None:
        """Block the thread for ``seconds``."""

    async def asleep(self, seconds: float) -> None:
        """Suspend the task for ``seconds``."""

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        """Run ``callback`` in the running event loop at monotonic time ``when``."""

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        """Wait until ``event`` is set or ``timeout`` passes; return whether it is set."""


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.time``, ``time.sleep`` and ``asyncio.sleep``."""

    __slots__ = ()

    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``; a zero or negative delay returns at once (no syscall)."""
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """Suspend for ``seconds``; a zero or negative delay still yields to the loop once."""
        await asyncio.sleep(seconds if seconds > 0 else 0)

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        """Schedule ``callback`` on the running loop at monotonic time ``when``."""
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, when - time.monotonic()), callback)

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        """Block on ``event`` for at most ``timeout`` seconds (None: no limit)."""
        return event.wait(timeout)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()
