"""Breaker states, options and snapshots: the plain data around the state machine."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from buttress import _options as opt
from buttress.errors import ConfigError

if TYPE_CHECKING:
    from buttress.retry import Backoff

__all__ = ["BreakerOptions", "BreakerSnapshot", "BreakerState"]


class BreakerState(enum.Enum):
    """Where a circuit breaker stands."""

    CLOSED = "closed"
    """Calls flow; outcomes are recorded."""
    OPEN = "open"
    """Calls are rejected until ``open_for`` has passed."""
    HALF_OPEN = "half_open"
    """A few trial calls probe the dependency; the rest are rejected."""
    FORCED_OPEN = "forced_open"
    """Opened by ``trip()``; rejects until ``reset()``."""
    DISABLED = "disabled"
    """Set by ``disable()``; lets everything through and still counts."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class BreakerOptions:
    """The options of a ``CircuitBreaker``, validated at construction (see its docstring)."""

    failure_rate: float = 0.5
    minimum_calls: int = 10
    window: int = 100
    window_seconds: float | None = None
    slow_call_duration: float | None = None
    slow_call_rate: float = 1.0
    consecutive_failures: int | None = None
    open_for: float = 60.0
    open_backoff: Backoff | None = None
    half_open_calls: int = 1
    success_threshold: int = 1
    on: opt.ExceptionSpec = Exception
    ignore: opt.ExceptionSpec = ()
    on_result: Callable[[Any], bool] | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "failure_rate", opt.rate("failure_rate", self.failure_rate))
        set_(self, "slow_call_rate", opt.rate("slow_call_rate", self.slow_call_rate))
        set_(self, "minimum_calls", opt.integer("minimum_calls", self.minimum_calls))
        set_(self, "window", opt.integer("window", self.window))
        seconds = opt.optional_duration("window_seconds", self.window_seconds)
        set_(self, "window_seconds", seconds)
        if seconds is None and self.minimum_calls > self.window:
            raise ConfigError(
                "minimum_calls", self.minimum_calls, f"must be <= window ({self.window})"
            )
        set_(
            self,
            "slow_call_duration",
            opt.optional_duration("slow_call_duration", self.slow_call_duration),
        )
        if self.consecutive_failures is not None:
            opt.integer("consecutive_failures", self.consecutive_failures)
        set_(self, "open_for", opt.duration("open_for", self.open_for))
        if self.open_backoff is not None and not callable(
            getattr(self.open_backoff, "delays", None)
        ):
            raise ConfigError("open_backoff", self.open_backoff, "must be a Backoff")
        opt.integer("half_open_calls", self.half_open_calls)
        opt.integer("success_threshold", self.success_threshold)
        if self.success_threshold > self.half_open_calls:
            raise ConfigError(
                "success_threshold",
                self.success_threshold,
                f"must be <= half_open_calls ({self.half_open_calls})",
            )
        opt.exception_filter("on", self.on)
        if self.ignore != ():
            opt.exception_filter("ignore", self.ignore)
        if self.on_result is not None and not callable(self.on_result):
            raise ConfigError("on_result", self.on_result, "must be a predicate result -> bool")


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """A consistent view of a breaker: state, rates over the window, and lifetime counts."""

    name: str
    state: BreakerState
    since: float
    """Wall-clock time of the last state change."""
    retry_after: float | None
    """Seconds until an open breaker lets a trial through (None unless OPEN)."""
    failure_rate: float
    """Share of failed calls in the window (0.0 when it is empty)."""
    slow_rate: float
    """Share of slow calls in the window."""
    window_calls: int
    window_failures: int
    window_slow: int
    calls: int
    """Calls that ran (successes + failures + ignored)."""
    successes: int
    failures: int
    slow: int
    rejected: int
    ignored: int
    openings: int
    """Times the breaker opened since it was created."""
    degraded: bool = False
    """A shared breaker (``shared=``) whose store is unreachable runs alone meanwhile."""

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as plain data."""
        data = {name: getattr(self, name) for name in self.__slots__}
        data["state"] = self.state.value
        return data
