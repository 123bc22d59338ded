"""Backoff schedules: how long to wait before each retry.

A ``Backoff`` is an immutable description (constant, linear, exponential, fibonacci, decorrelated)
with optional jitter; ``delays()`` turns it into an endless iterator of delays in seconds. Every
delay is finite and within ``[0, cap]`` at any attempt number: once the raw value reaches ``cap``
the schedule stops growing, so nothing is ever multiplied past it and nothing overflows.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from itertools import repeat
from typing import Any, Literal, NoReturn, TypeAlias, cast

from buttress._options import duration, number
from buttress.errors import ConfigError

__all__ = ["Backoff", "BackoffKind", "Jitter"]

Jitter: TypeAlias = Literal["none", "full", "equal"]
"""``none``: the raw delay; ``full``: uniform(0, d); ``equal``: d/2 + uniform(0, d/2)."""

BackoffKind: TypeAlias = Literal["constant", "linear", "exponential", "fibonacci", "decorrelated"]

_JITTERS = ("none", "full", "equal")
_KINDS = ("constant", "linear", "exponential", "fibonacci", "decorrelated")

# Shared default source of randomness; pass rng= for reproducible schedules.
_RNG = random.Random()


def _jitter(value: object) -> Jitter:
    if isinstance(value, str) and value in _JITTERS:
        return cast(Jitter, value)
    raise ConfigError("jitter", value, "must be one of 'none', 'full', 'equal'")


def _cap(value: object, floor: float, floor_name: str) -> float:
    cap = duration("cap", value, allow_zero=True)
    if cap < floor:
        raise ConfigError("cap", value, f"must be >= {floor_name} ({floor:g})")
    return cap


class Backoff:
    """An immutable delay schedule; build one with ``Backoff.constant()``, ``.linear()``,
    ``.exponential()``, ``.fibonacci()`` or ``.decorrelated()``.

    >>> from itertools import islice
    >>> list(islice(Backoff.exponential(base=1, cap=5).delays(), 5))
    [1.0, 2.0, 4.0, 5.0, 5.0]
    """

    __slots__ = ("base", "cap", "factor", "jitter", "kind", "step")

    kind: BackoffKind
    base: float
    step: float
    factor: float
    cap: float
    jitter: Jitter

    def __init__(self) -> None:
        raise TypeError(
            "build a Backoff with Backoff.constant(), .linear(), .exponential(), "
            ".fibonacci(), .decorrelated() or .from_dict()"
        )

    @classmethod
    def _new(
        cls,
        kind: BackoffKind,
        base: float,
        cap: float,
        *,
        step: float = 0.0,
        factor: float = 1.0,
        jitter: Jitter = "none",
    ) -> Backoff:
        self = cls.__new__(cls)
        for name, value in (
            ("kind", kind),
            ("base", base),
            ("cap", cap),
            ("step", step),
            ("factor", factor),
            ("jitter", jitter),
        ):
            object.__setattr__(self, name, value)
        return self

    @classmethod
    def constant(cls, delay: object, *, cap: object = None, jitter: object = "none") -> Backoff:
        """Always ``delay`` seconds; ``cap`` (default max(delay, 10)) bounds Retry-After hints."""
        seconds = duration("delay", delay, allow_zero=True)
        limit = max(seconds, 10.0) if cap is None else _cap(cap, seconds, "delay")
        return cls._new("constant", seconds, limit, jitter=_jitter(jitter))

    @classmethod
    def linear(
        cls, base: object = 0.1, step: object = 0.1, cap: object = 10.0, *, jitter: object = "none"
    ) -> Backoff:
        """``base``, ``base + step``, ``base + 2*step``, ... up to ``cap`` (0.1, 0.1, 10.0)."""
        first = duration("base", base, allow_zero=True)
        increment = duration("step", step, allow_zero=True)
        return cls._new(
            "linear", first, _cap(cap, first, "base"), step=increment, jitter=_jitter(jitter)
        )

    @classmethod
    def exponential(
        cls,
        base: object = 0.1,
        factor: object = 2.0,
        cap: object = 10.0,
        *,
        jitter: object = "none",
    ) -> Backoff:
        """``base * factor**n`` up to ``cap`` (defaults 0.1, 2.0, 10.0; factor >= 1)."""
        first = duration("base", base)
        growth = number("factor", factor, minimum=1.0)
        return cls._new(
            "exponential", first, _cap(cap, first, "base"), factor=growth, jitter=_jitter(jitter)
        )

    @classmethod
    def fibonacci(
        cls, base: object = 0.1, cap: object = 10.0, *, jitter: object = "none"
    ) -> Backoff:
        """``base`` times 1, 1, 2, 3, 5, 8, ... up to ``cap`` (defaults 0.1, 10.0)."""
        first = duration("base", base)
        return cls._new("fibonacci", first, _cap(cap, first, "base"), jitter=_jitter(jitter))

    @classmethod
    def decorrelated(cls, base: object = 0.1, cap: object = 10.0) -> Backoff:
        """AWS decorrelated jitter: ``min(cap, uniform(base, previous * 3))`` (0.1, 10.0)."""
        first = duration("base", base)
        return cls._new("decorrelated", first, _cap(cap, first, "base"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Backoff:
        """The inverse of ``describe()``: ``Backoff.from_dict({"kind": "linear", "step": 1})``."""
        params = dict(data)
        kind = params.pop("kind", None)
        if kind not in _KINDS:
            raise ConfigError("kind", kind, f"must be one of {', '.join(map(repr, _KINDS))}")
        factory: Callable[..., Backoff] = getattr(cls, kind)
        try:
            return factory(**params)
        except TypeError as exc:
            raise ConfigError("backoff", dict(data), f"has unknown parameters ({exc})") from None

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The successive delays in seconds, forever; ``rng`` drives jitter (default shared)."""
        source = _RNG if rng is None else rng
        kind = self.kind
        if kind == "decorrelated":
            return _decorrelated(self.base, self.cap, source.random)
        raw: Iterator[float]
        if kind == "constant":
            raw = repeat(self.base)
        elif kind == "linear":
            raw = _linear(self.base, self.step, self.cap)
        elif kind == "exponential":
            raw = _exponential(self.base, self.factor, self.cap)
        else:
            raw = _fibonacci(self.base, self.cap)
        if self.jitter == "full":
            return _full_jitter(raw, source.random)
        if self.jitter == "equal":
            return _equal_jitter(raw, source.random)
        return raw

    def first(self, rng: random.Random | None = None) -> float:
        """The first delay: ``next(self.delays(rng))``, drawing the same numbers, without
        building the iterator (a dead letter's first attempt is scheduled with it)."""
        random_ = (_RNG if rng is None else rng).random
        base = self.base
        if self.kind == "decorrelated":
            value = base + (base * 3.0 - base) * random_()
            return value if value <= self.cap else self.cap
        if self.jitter == "full":
            return base * random_()
        if self.jitter == "equal":
            half = base / 2.0
            return min(base, half + half * random_())
        return base

    def describe(self) -> dict[str, Any]:
        """The kind and its parameters as plain data (accepted back by ``from_dict``)."""
        data: dict[str, Any] = {"kind": self.kind}
        if self.kind == "constant":
            data["delay"] = self.base
        else:
            data["base"] = self.base
        if self.kind == "linear":
            data["step"] = self.step
        elif self.kind == "exponential":
            data["factor"] = self.factor
        data["cap"] = self.cap
        if self.kind != "decorrelated":
            data["jitter"] = self.jitter
        return data

    def _key(self) -> tuple[object, ...]:
        return (self.kind, self.base, self.step, self.factor, self.cap, self.jitter)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Backoff):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        params = self.describe()
        kind = params.pop("kind")
        if params.get("jitter") == "none":
            del params["jitter"]
        args = ", ".join(f"{name}={value!r}" for name, value in params.items())
        return f"Backoff.{kind}({args})"

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"Backoff is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"Backoff is immutable; cannot delete {name!r}")

    def __reduce__(self) -> tuple[Callable[[Mapping[str, Any]], Backoff], tuple[dict[str, Any]]]:
        return (Backoff.from_dict, (self.describe(),))


# The raw schedules stop computing once they reach cap, so huge attempt numbers cost nothing
# and never overflow; every step is non-decreasing.


def _linear(base: float, step: float, cap: float) -> Iterator[float]:
    value = base
    n = 0
    while value < cap:
        yield value
        n += 1
        # base + step*n, not a running sum: no drift, and monotone in n.
        value = min(cap, base + step * n)
    yield from repeat(cap)


def _exponential(base: float, factor: float, cap: float) -> Iterator[float]:
    value = base
    while value < cap:
        yield value
        value = min(cap, value * factor)
    yield from repeat(cap)


def _fibonacci(base: float, cap: float) -> Iterator[float]:
    current, following = base, base
    while current < cap:
        yield current
        current, following = following, min(cap, current + following)
    yield from repeat(cap)


def _decorrelated(base: float, cap: float, random: Callable[[], float]) -> Iterator[float]:
    previous = base
    while True:
        value = base + (previous * 3.0 - base) * random()
        if not value <= cap:  # also catches inf and nan from a cap near the float limit
            value = cap
        previous = value
        yield value


def _full_jitter(raw: Iterator[float], random: Callable[[], float]) -> Iterator[float]:
    for value in raw:
        yield value * random()


def _equal_jitter(raw: Iterator[float], random: Callable[[], float]) -> Iterator[float]:
    for value in raw:
        half = value / 2.0
        # min(): for subnormal values half + half may round above value.
        yield min(value, half + half * random())
