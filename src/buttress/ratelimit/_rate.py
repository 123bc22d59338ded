"""Rates and windows from numbers or text: ``10`` (per second), ``"100/minute"``, ``"5 per hour"``.

>>> parse_rate("rate", "100/minute")
1.6666666666666667
>>> parse_rate("rate", "10/s"), parse_rate("rate", "5 per 2 hours"), parse_rate("rate", 2.5)
(10.0, 0.0006944444444444445, 2.5)
>>> parse_period("window", "1 minute"), parse_period("window", "ms"), parse_period("window", 30)
(60.0, 0.001, 30.0)
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from buttress.errors import ConfigError

__all__ = ["UNITS", "parse_period", "parse_rate", "positive"]

UNITS: dict[str, float] = {
    "ms": 0.001,
    "millisecond": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}
"""Seconds per unit; plurals (``minutes``) are accepted too."""

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_PERIOD = re.compile(rf"^\s*(?:(?P<n>{_NUMBER})\s*)?(?P<unit>[a-zA-Z]+)\s*$")
_RATE = re.compile(rf"^\s*(?P<count>{_NUMBER})\s*(?:/|\bper\b)\s*(?P<period>.+)$")

_RATE_EXPECTED = 'must be a finite number > 0 per second, or text like "100/minute"'


def positive(field: str, value: object, *, minimum: float = 0.0) -> float:
    """A finite number > 0 (and >= ``minimum`` when given), as a float."""
    if minimum > 0:
        expected = f"must be a finite number >= {minimum:g}"
    else:
        expected = "must be a finite number > 0"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(field, value, expected)
    number = float(value)
    if not (0 < number < math.inf) or number < minimum:
        raise ConfigError(field, value, expected)
    return number


def _unit_seconds(name: str) -> float | None:
    unit = name.lower()
    seconds = UNITS.get(unit)
    if seconds is None and unit.endswith("s") and len(unit) > 2:
        seconds = UNITS.get(unit[:-1])
    return seconds


def _text_period(text: str) -> float | None:
    match = _PERIOD.match(text)
    if match is None:
        return None
    seconds = _unit_seconds(match["unit"])
    if seconds is None:
        return None
    count = float(match["n"]) if match["n"] else 1.0
    return count * seconds


def parse_period(field: str, value: object) -> float:
    """A window in seconds: a number, a ``timedelta``, or text like ``"1 minute"``, ``"30s"``."""
    expected = 'must be a finite duration > 0 seconds, or text like "1 minute"'
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, str):
        seconds = _text_period(value)
        if seconds is None:
            raise ConfigError(field, value, expected)
        value = seconds
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(field, value, expected)
    seconds = float(value)
    if not 0 < seconds < math.inf:
        raise ConfigError(field, value, expected)
    return seconds


def parse_rate(field: str, value: object) -> float:
    """Events per second from a number (per second) or text ``"<count>/<period>"``.

    The period is a unit (``s``, ``second``, ``minute``, ``hour``, ``day``, ``ms``, plurals
    too), optionally with a count: ``"100/minute"``, ``"10/s"``, ``"5 per hour"``,
    ``"1000 per 5 minutes"``.
    """
    if isinstance(value, str):
        match = _RATE.match(value)
        period = _text_period(match["period"]) if match is not None else None
        if match is None or period is None:
            raise ConfigError(field, value, _RATE_EXPECTED)
        rate = float(match["count"]) / period
        if not 0 < rate < math.inf:
            raise ConfigError(field, value, _RATE_EXPECTED)
        return rate
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(field, value, _RATE_EXPECTED)
    rate = float(value)
    if not 0 < rate < math.inf:
        raise ConfigError(field, value, _RATE_EXPECTED)
    return rate
