"""``AdaptiveConcurrency``: a concurrency limit that follows the latency and errors it observes.

Two algorithms, after Netflix's concurrency-limits, as pure cores fed one sample per finished
call (its round-trip time, the calls in flight when it started, whether it was dropped); they
never read a clock. The math and the defaults are in ``docs/load-shedding.md``.

- ``aimd``: +1 on a success under ``latency_threshold`` while the limit is in use, times
  ``backoff_ratio`` on a drop (an error of ``on=``, a rejected result, or a slow success).
- ``gradient2``: compares a long-term average RTT (an EMA over ``long_window`` samples) with the
  sample's RTT; ``gradient = clamp(tolerance * long / short, 0.5, 1)``,
  ``new = limit * gradient + queue_size``, smoothed by ``smoothing``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Literal, ParamSpec, TypeVar

from buttress import _options
from buttress._clock import Clock
from buttress.errors import ConfigError, RejectedError
from buttress.events import Event, emit, wants
from buttress.ratelimit._concurrency import SlotLimiter

__all__ = [
    "AdaptiveConcurrency",
    "AdaptiveConcurrencyOptions",
    "AdaptiveSnapshot",
    "ConcurrencyLimitChanged",
]

P = ParamSpec("P")
T = TypeVar("T")

AdaptiveAlgorithm = Literal["aimd", "gradient2"]

_OK, _DROPPED, _IGNORED = 0, 1, 2
_NEVER_COUNTED: tuple[type[BaseException], ...] = (asyncio.CancelledError, *_options.CANCELLATION)


@dataclass(frozen=True, slots=True)
class ConcurrencyLimitChanged(Event):
    """An adaptive limit moved from ``old`` to ``new`` (``reason``: ``"increase"`` or ``"drop"``
    or ``"gradient"``). Logged at DEBUG: it can change on every call."""

    kind: ClassVar[str] = "concurrency.limit_changed"
    level: ClassVar[int] = logging.DEBUG

    old: int
    new: int
    reason: str

    def message(self) -> str:
        return (
            f"adaptive concurrency {self.source!r}: limit {self.old} -> {self.new} ({self.reason})"
        )


class Aimd:
    """Additive increase, multiplicative decrease; a pure core (no clock)."""

    __slots__ = ("backoff_ratio", "latency_threshold", "limit", "max_limit", "min_limit")

    def __init__(
        self,
        initial: int,
        min_limit: int,
        max_limit: int,
        latency_threshold: float,
        backoff_ratio: float,
    ) -> None:
        self.limit = float(initial)
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.latency_threshold = latency_threshold
        self.backoff_ratio = backoff_ratio

    def update(self, rtt: float, in_flight: int, dropped: bool) -> str | None:
        """Feed one sample; return why the limit changed (or None)."""
        limit = self.limit
        new: float
        if dropped or rtt > self.latency_threshold:
            new, reason = math.floor(limit * self.backoff_ratio), "drop"
        elif in_flight * 2 >= limit:
            new, reason = limit + 1, "increase"
        else:
            return None  # the limit is not in use: a success says nothing about a higher one
        self.limit = float(min(self.max_limit, max(self.min_limit, new)))
        return reason if self.limit != limit else None

    def long_rtt(self) -> float | None:
        """AIMD keeps no long-term RTT."""
        return None


class Gradient2:
    """Netflix's Gradient2: long-term EMA RTT against the sample's RTT; a pure core."""

    __slots__ = (
        "_count",
        "_factor",
        "_long",
        "_sum",
        "limit",
        "max_limit",
        "min_limit",
        "queue_size",
        "smoothing",
        "tolerance",
    )

    WARMUP = 10
    """Samples averaged plainly before the long-term EMA starts."""

    def __init__(
        self,
        initial: int,
        min_limit: int,
        max_limit: int,
        *,
        smoothing: float,
        tolerance: float,
        long_window: int,
        queue_size: float,
    ) -> None:
        self.limit = float(initial)
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.smoothing = smoothing
        self.tolerance = tolerance
        self.queue_size = queue_size
        self._factor = 2.0 / (long_window + 1)
        self._count = 0
        self._sum = 0.0
        self._long = 0.0

    def _observe(self, rtt: float) -> float:
        if self._count < self.WARMUP:
            self._count += 1
            self._sum += rtt
            self._long = self._sum / self._count
        else:
            self._long += (rtt - self._long) * self._factor
        return self._long

    def update(self, rtt: float, in_flight: int, dropped: bool) -> str | None:
        """Feed one sample; return why the limit changed (or None)."""
        limit = self.limit
        if dropped:
            gradient = 0.5  # an error or timeout: the steepest decrease the gradient allows
        else:
            long = self._observe(rtt)
            short = max(rtt, 1e-9)
            if long / short > 2:
                # Latency is back to normal after a long spell of overload: let the long-term
                # average come down faster than the EMA alone would.
                self._long = long = long * 0.95
            if in_flight < limit / 2:
                return None  # app-limited: the limit is not what holds the calls back
            gradient = max(0.5, min(1.0, self.tolerance * long / short))
        new = limit * gradient + self.queue_size
        new = limit * (1 - self.smoothing) + new * self.smoothing
        self.limit = min(float(self.max_limit), max(float(self.min_limit), new))
        return ("drop" if dropped else "gradient") if self.limit != limit else None

    def long_rtt(self) -> float | None:
        """The long-term RTT average, once there is a sample."""
        return self._long if self._count else None


@dataclass(frozen=True, slots=True)
class AdaptiveConcurrencyOptions:
    """An adaptive limiter's options; see ``AdaptiveConcurrency``. Options of the other
    algorithm are None."""

    algorithm: AdaptiveAlgorithm = "aimd"
    min_limit: int = 1
    max_limit: int = 200
    initial_limit: int = 20
    latency_threshold: float | None = None
    backoff_ratio: float | None = None
    smoothing: float | None = None
    tolerance: float | None = None
    long_window: int | None = None
    queue_size: float | None = None
    on: _options.ExceptionSpec = (TimeoutError, RejectedError)
    on_result: Callable[[Any], bool] | None = None


@dataclass(frozen=True, slots=True)
class AdaptiveSnapshot:
    """An adaptive limiter's state: its limit (between ``min_limit`` and ``max_limit``), calls
    in flight, samples and drops seen, the last and long-term RTT, and rejections."""

    name: str
    algorithm: str
    limit: int
    in_flight: int
    min_limit: int
    max_limit: int
    rejected: int
    shedding: bool
    samples: int
    drops: int
    last_rtt: float | None
    long_rtt: float | None


_AIMD_ONLY = ("latency_threshold", "backoff_ratio")
_GRADIENT2_ONLY = ("smoothing", "tolerance", "long_window", "queue_size")


def _or(value: object, default: object) -> Any:
    return default if value is None else value


def _fraction(field: str, value: object, *, closed: bool) -> float:
    expected = "must be a number in (0, 1]" if closed else "must be a number in (0, 1)"
    try:
        number = _options.number(field, value, minimum=0, inclusive=False)
    except ConfigError:
        raise ConfigError(field, value, expected) from None
    if number > 1 or (number == 1 and not closed):
        raise ConfigError(field, value, expected)
    return number


class AdaptiveConcurrency(SlotLimiter):
    """A concurrency limit that adapts to latency and errors; beyond it calls are shed with
    ``LoadShedError``.

    ``AdaptiveConcurrency(algorithm="aimd", *, min_limit=1, max_limit=200, initial_limit=20,
    latency_threshold=5.0, backoff_ratio=0.9, smoothing=0.2, tolerance=1.5, long_window=600,
    queue_size=4, on=(TimeoutError, RejectedError), on_result=None, name="adaptive",
    clock=None)``. ``latency_threshold`` and ``backoff_ratio`` belong to ``"aimd"``, the next
    four to ``"gradient2"``; giving one to the other algorithm is a ``ConfigError``. A call
    raising an error of ``on=`` (or whose result ``on_result`` rejects) is a drop and lowers the
    limit; other errors and cancellations teach it nothing.
    """

    __slots__ = ("_core", "_last_rtt", "_on", "_on_result", "drops", "samples")

    options: AdaptiveConcurrencyOptions

    def __init__(
        self,
        algorithm: AdaptiveAlgorithm = "aimd",
        *,
        min_limit: int = 1,
        max_limit: int = 200,
        initial_limit: int = 20,
        latency_threshold: float | timedelta | None = None,
        backoff_ratio: float | None = None,
        smoothing: float | None = None,
        tolerance: float | None = None,
        long_window: int | None = None,
        queue_size: float | None = None,
        on: _options.ExceptionSpec = (TimeoutError, RejectedError),
        on_result: Callable[[Any], bool] | None = None,
        name: str = "adaptive",
        clock: Clock | None = None,
    ) -> None:
        if algorithm not in ("aimd", "gradient2"):
            raise ConfigError("algorithm", algorithm, "must be 'aimd' or 'gradient2'")
        min_limit = _options.integer("min_limit", min_limit, minimum=1)
        max_limit = _options.integer("max_limit", max_limit, minimum=min_limit)
        if not isinstance(initial_limit, int) or not min_limit <= initial_limit <= max_limit:
            raise ConfigError(
                "initial_limit", initial_limit, f"must be an integer in [{min_limit}, {max_limit}]"
            )
        given = {
            "latency_threshold": latency_threshold,
            "backoff_ratio": backoff_ratio,
            "smoothing": smoothing,
            "tolerance": tolerance,
            "long_window": long_window,
            "queue_size": queue_size,
        }
        foreign = _GRADIENT2_ONLY if algorithm == "aimd" else _AIMD_ONLY
        for field in foreign:
            if given[field] is not None:
                raise ConfigError(field, given[field], f"does not apply to algorithm {algorithm!r}")
        self._on = _options.exception_filter("on", on)
        if on_result is not None and not callable(on_result):
            raise ConfigError("on_result", on_result, "must be a predicate on the result")
        self._on_result = on_result
        self._core: Aimd | Gradient2
        if algorithm == "aimd":
            threshold = _options.duration("latency_threshold", _or(latency_threshold, 5.0))
            ratio = _fraction("backoff_ratio", _or(backoff_ratio, 0.9), closed=False)
            self._core = Aimd(initial_limit, min_limit, max_limit, threshold, ratio)
            tuned: dict[str, Any] = {"latency_threshold": threshold, "backoff_ratio": ratio}
        else:
            tuned = {
                "smoothing": _fraction("smoothing", _or(smoothing, 0.2), closed=True),
                "tolerance": _options.number("tolerance", _or(tolerance, 1.5), minimum=1),
                "long_window": _options.integer("long_window", _or(long_window, 600)),
                "queue_size": _options.number("queue_size", _or(queue_size, 4), minimum=0),
            }
            self._core = Gradient2(initial_limit, min_limit, max_limit, **tuned)
        self.options = AdaptiveConcurrencyOptions(
            algorithm, min_limit, max_limit, initial_limit, on=on, on_result=on_result, **tuned
        )
        self.samples = 0
        self.drops = 0
        self._last_rtt: float | None = None
        self._init(name, initial_limit, clock)

    def snapshot(self) -> AdaptiveSnapshot:
        """The current limit, calls in flight, samples, drops, RTTs and rejections."""
        opts = self.options
        with self._lock:
            return AdaptiveSnapshot(
                self.name,
                opts.algorithm,
                self._limit,
                self._in_flight,
                opts.min_limit,
                opts.max_limit,
                self.rejected,
                self._shedding(),
                self.samples,
                self.drops,
                self._last_rtt,
                self._core.long_rtt(),
            )

    def _judge(self, exc: BaseException) -> int:
        if isinstance(exc, _NEVER_COUNTED):
            return _IGNORED
        return _DROPPED if self._on(exc) else _IGNORED

    def _finish(self, started: float, in_flight: int, outcome: int) -> None:
        """Give the slot back and, unless ignored, feed the sample to the algorithm."""
        rtt = self._clock.monotonic() - started
        with self._lock:
            self._in_flight -= 1
            if outcome == _IGNORED:
                return
            old = self._limit
            self.samples += 1
            self._last_rtt = rtt
            if outcome == _DROPPED:
                self.drops += 1
            reason = self._core.update(rtt, in_flight, outcome == _DROPPED)
            if reason is None:
                return
            new = self._limit = int(self._core.limit)
        if new != old and wants(ConcurrencyLimitChanged):
            emit(ConcurrencyLimitChanged(self.name, self._clock.time(), old, new, reason))

    def _outcome(self, result: object) -> int:
        on_result = self._on_result
        return _DROPPED if on_result is not None and on_result(result) else _OK

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` if under the current limit, and learn from how it went."""
        in_flight = self._admit() + 1
        started = self._clock.monotonic()
        outcome = _IGNORED
        try:
            result = fn(*args, **kwargs)
            outcome = self._outcome(result)
            return result
        except BaseException as exc:
            outcome = self._judge(exc)
            raise
        finally:
            self._finish(started, in_flight, outcome)

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` if under the current limit, and learn from how it went."""
        in_flight = self._admit() + 1
        started = self._clock.monotonic()
        outcome = _IGNORED
        try:
            result = await fn(*args, **kwargs)
            outcome = self._outcome(result)
            return result
        except BaseException as exc:
            outcome = self._judge(exc)
            raise
        finally:
            self._finish(started, in_flight, outcome)
