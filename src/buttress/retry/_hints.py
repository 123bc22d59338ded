"""Retry-After hints: from a ``retry_after`` attribute, or from an HTTP 429/503 answer (httpx).

httpx is never imported here: an httpx object can only exist once someone imported httpx, so
looking it up in ``sys.modules`` is enough and keeps httpx optional.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, timedelta
from email.utils import parsedate_to_datetime

__all__ = ["error_hint", "parse_retry_after", "result_hint"]

# Statuses whose Retry-After header says when to come back (RFC 9110, section 10.2.3).
HINT_STATUSES = frozenset({429, 503})


def _seconds(value: object) -> float | None:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    # A negative or NaN hint says nothing; an infinite one is clamped to the cap later.
    return seconds if seconds >= 0 else None


def parse_retry_after(value: str, wall: Callable[[], float]) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), None if unreadable."""
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - wall())


def _response_hint(response: object, wall: Callable[[], float]) -> float | None:
    if getattr(response, "status_code", None) not in HINT_STATUSES:
        return None
    header = response.headers.get("Retry-After")  # type: ignore[attr-defined]
    return None if header is None else parse_retry_after(header, wall)


def error_hint(error: BaseException, wall: Callable[[], float]) -> float | None:
    """The delay an error asks for: ``error.retry_after``, or an httpx 429/503 Retry-After."""
    try:
        value = getattr(error, "retry_after", None)
    except Exception:  # a broken property is no hint
        value = None
    if value is not None:
        return _seconds(value)
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(error, httpx.HTTPStatusError):
        return _response_hint(error.response, wall)
    return None


def result_hint(result: object, wall: Callable[[], float]) -> float | None:
    """The delay a rejected result asks for: an ``httpx.Response`` 429/503 Retry-After."""
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(result, httpx.Response):
        return _response_hint(result, wall)
    return None
