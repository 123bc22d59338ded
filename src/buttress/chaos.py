"""``Chaos``: inject faults and latency on purpose, for drills and tests."""

from __future__ import annotations

import copy
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import ParamSpec, TypeAlias, TypeVar

from buttress import _options
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._policy import Policy
from buttress.errors import ConfigError
from buttress.events import ChaosInjected, emit, wants

__all__ = ["Chaos", "ChaosOptions", "ChaosSnapshot", "FaultSpec"]

P = ParamSpec("P")
T = TypeVar("T")

FaultSpec: TypeAlias = type[BaseException] | BaseException | Callable[[], BaseException]
"""An exception type, an instance (copied each time) or a zero-argument factory."""


def _default_fault() -> BaseException:
    return ConnectionError("buttress chaos: injected fault")


@dataclass(frozen=True, slots=True)
class ChaosOptions:
    """A chaos policy's options; see ``Chaos``."""

    fault: FaultSpec | None = None
    fault_rate: float = 0.0
    latency: float = 0.0
    latency_rate: float = 0.0
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class ChaosSnapshot:
    """Whether chaos is on, and how many faults and latencies it injected so far."""

    name: str
    enabled: bool
    faults: int
    latencies: int


def _probability(field: str, value: object) -> float:
    expected = "must be a probability in [0, 1]"
    try:
        number = _options.number(field, value, minimum=0)
    except ConfigError:
        raise ConfigError(field, value, expected) from None
    if number > 1:
        raise ConfigError(field, value, expected)
    return number


def _fault_maker(fault: object) -> Callable[[], BaseException]:
    if fault is None:
        return _default_fault
    if isinstance(fault, type):
        if not issubclass(fault, BaseException):
            raise ConfigError("fault", fault, "must be an exception type, instance or factory")
        return fault
    if isinstance(fault, BaseException):
        # A new object each time, so tracebacks never pile up on one shared instance.
        return lambda: copy.copy(fault)
    if callable(fault):
        return fault
    raise ConfigError("fault", fault, "must be an exception type, instance or factory")


class Chaos(Policy):
    """Before a call, sleep ``latency`` with probability ``latency_rate``; then, with probability
    ``fault_rate``, raise a fault instead of making the call.

    ``Chaos(*, fault=None, fault_rate=0.0, latency=0.0, latency_rate=0.0, enabled=True,
    name="chaos", clock=None, rng=None)``. ``fault`` is an exception type, a zero-argument
    callable returning an exception, or an instance (copied for each injection); None means
    ``ConnectionError("buttress chaos: injected fault")``. Rates are in [0, 1]; ``latency`` is
    seconds (or a ``timedelta``) >= 0. ``enable()`` and ``disable()`` switch it at run time; a
    disabled chaos policy only calls through. ``rng`` (a ``random.Random``) makes runs repeatable.
    """

    __slots__ = (
        "_clock",
        "_enabled",
        "_fault",
        "_fault_rate",
        "_latency",
        "_latency_rate",
        "_rng",
        "faults",
        "latencies",
        "name",
        "options",
    )

    options: ChaosOptions

    def __init__(
        self,
        *,
        fault: FaultSpec | None = None,
        fault_rate: float = 0.0,
        latency: float | timedelta = 0.0,
        latency_rate: float = 0.0,
        enabled: bool = True,
        name: str = "chaos",
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        fault_rate = _probability("fault_rate", fault_rate)
        latency_rate = _probability("latency_rate", latency_rate)
        latency = _options.duration("latency", latency, allow_zero=True)
        if not isinstance(enabled, bool):
            raise ConfigError("enabled", enabled, "must be True or False")
        if rng is not None and not isinstance(rng, random.Random):
            raise ConfigError("rng", rng, "must be a random.Random")
        self._fault = _fault_maker(fault)
        self.name = name
        self.options = ChaosOptions(fault, fault_rate, latency, latency_rate, enabled)
        self.faults = 0
        self.latencies = 0
        self._fault_rate = fault_rate
        self._latency = latency
        self._latency_rate = latency_rate
        self._enabled = enabled
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._rng = random.Random() if rng is None else rng

    @property
    def enabled(self) -> bool:
        """Whether faults and latency are being injected."""
        return self._enabled

    def enable(self) -> None:
        """Start injecting."""
        self._enabled = True

    def disable(self) -> None:
        """Stop injecting: calls go straight through."""
        self._enabled = False

    def snapshot(self) -> ChaosSnapshot:
        """Whether it is enabled, and the faults and latencies injected so far."""
        return ChaosSnapshot(self.name, self._enabled, self.faults, self.latencies)

    def _delay(self) -> float:
        """The latency to inject before this call (0.0 for none)."""
        if self._latency_rate and self._rng.random() < self._latency_rate:
            self.latencies += 1
            if wants(ChaosInjected):
                emit(ChaosInjected(self.name, self._clock.time(), latency=self._latency))
            return self._latency
        return 0.0

    def _maybe_fail(self) -> None:
        if self._fault_rate and self._rng.random() < self._fault_rate:
            error = self._fault()
            if not isinstance(error, BaseException):
                raise TypeError(
                    f"chaos {self.name!r}: the fault factory returned {error!r}, not an exception"
                )
            self.faults += 1
            if wants(ChaosInjected):
                emit(ChaosInjected(self.name, self._clock.time(), fault=type(error).__name__))
            raise error

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)``, maybe after injected latency, unless a fault is injected."""
        if self._enabled:
            delay = self._delay()
            if delay:
                self._clock.sleep(delay)
            self._maybe_fail()
        return fn(*args, **kwargs)

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)``, maybe after latency, unless a fault is injected."""
        if self._enabled:
            delay = self._delay()
            if delay:
                await self._clock.asleep(delay)
            self._maybe_fail()
        return await fn(*args, **kwargs)
