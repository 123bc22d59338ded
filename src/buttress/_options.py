"""Validation of policy options, shared by every policy so that errors read the same everywhere.

Each helper takes the field's name and its value and returns the normalised value or raises
``ConfigError`` naming the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeAlias

from buttress.errors import ConfigError

Duration: TypeAlias = float | int | timedelta
"""Seconds as a number, or a ``timedelta``."""

ExceptionSpec: TypeAlias = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)
"""What counts: an exception type, a tuple of types, or a predicate ``exc -> bool``."""

# Never a failure, never retried, never a fallback's business.
CANCELLATION: tuple[type[BaseException], ...] = (KeyboardInterrupt, SystemExit, GeneratorExit)


def _number(field: str, value: object, expected: str) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(field, value, expected)
    number = float(value)
    if math.isnan(number):
        raise ConfigError(field, value, expected)
    return number


def duration(field: str, value: object, *, allow_zero: bool = False) -> float:
    """A finite duration in seconds: > 0, or >= 0 with ``allow_zero``."""
    expected = "must be a duration >= 0 seconds" if allow_zero else "must be a duration > 0 seconds"
    seconds = _number(field, value, expected)
    if math.isinf(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise ConfigError(field, value, expected)
    return seconds


def optional_duration(field: str, value: object, *, allow_zero: bool = False) -> float | None:
    """Like ``duration`` but None passes through."""
    return None if value is None else duration(field, value, allow_zero=allow_zero)


def rate(field: str, value: object) -> float:
    """A fraction in (0, 1]."""
    number = _number(field, value, "must be a rate in (0, 1]")
    if not 0 < number <= 1:
        raise ConfigError(field, value, "must be a rate in (0, 1]")
    return number


def number(field: str, value: object, *, minimum: float, inclusive: bool = True) -> float:
    """A finite number >= ``minimum`` (or > with ``inclusive=False``)."""
    op = ">=" if inclusive else ">"
    expected = f"must be a finite number {op} {minimum:g}"
    result = _number(field, value, expected)
    if math.isinf(result) or result < minimum or (result == minimum and not inclusive):
        raise ConfigError(field, value, expected)
    return result


def integer(field: str, value: object, *, minimum: int = 1) -> int:
    """An int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(field, value, f"must be an integer >= {minimum}")
    return value


def exception_filter(field: str, value: object) -> Callable[[BaseException], bool]:
    """Compile an ``ExceptionSpec`` into a predicate."""
    if isinstance(value, type) and issubclass(value, BaseException):
        exc_type = value
        return lambda exc: isinstance(exc, exc_type)
    if isinstance(value, tuple):
        if not all(isinstance(t, type) and issubclass(t, BaseException) for t in value):
            raise ConfigError(field, value, "must hold only exception types")
        types = value
        return lambda exc: isinstance(exc, types)
    if callable(value):
        return value
    raise ConfigError(field, value, "must be an exception type, a tuple of them, or a predicate")


def exception_types(value: object) -> tuple[type[BaseException], ...]:
    """The exception types named by a spec (empty for a predicate)."""
    if isinstance(value, type) and issubclass(value, BaseException):
        return (value,)
    if isinstance(value, tuple):
        return tuple(t for t in value if isinstance(t, type))
    return ()


def render(value: object) -> Any:
    """An option value as plain data for ``describe()``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, type):
        return value.__qualname__
    if isinstance(value, tuple | list):
        return [render(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: render(getattr(value, f.name)) for f in dataclasses.fields(value)}
    describe = getattr(value, "describe", None)
    if callable(describe):
        return describe()
    return getattr(value, "__qualname__", None) or repr(value)


def options_dict(options: object) -> dict[str, Any]:
    """A frozen options dataclass as a dict of plain data."""
    assert dataclasses.is_dataclass(options)
    return {f.name: render(getattr(options, f.name)) for f in dataclasses.fields(options)}
