"""The deadline that a ``Timeout`` propagates to the code it runs (sync and async alike)."""

from __future__ import annotations

from contextvars import ContextVar

from buttress._clock import Clock

__all__ = ["remaining"]

# (absolute monotonic deadline, the clock it is measured on); the tightest enclosing deadline wins.
DEADLINE: ContextVar[tuple[float, Clock] | None] = ContextVar("buttress_deadline", default=None)


def remaining() -> float | None:
    """Seconds left before the enclosing ``Timeout``'s deadline (never negative), or None if none.

    Pass it on to I/O that takes a timeout: ``sock.settimeout(buttress.remaining())``.
    """
    current = DEADLINE.get()
    if current is None:
        return None
    deadline, clock = current
    return max(0.0, deadline - clock.monotonic())
