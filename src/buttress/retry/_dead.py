"""Dead-lettering a call that exhausted its retries: ``Retry(..., dead_letter=dlq, queue=...)``.

Only calls that gave up (attempts, timeout, deadline or budget) are dead-lettered, never the
first attempt's hot path. The payload is ``{"args": [...], "kwargs": {...}}`` when the arguments
are JSON; otherwise ``{"repr": "..."}`` classified ``poison`` (it cannot be replayed as it is).
Headers name the function and the retry. A failure to dead-letter is logged and noted on the
error; the caller always gets the call's own last error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from buttress.errors import ConfigError, DeadLetterError

__all__ = ["DeadLetterSink", "check_sink", "payload_of", "send", "send_async"]

logger = logging.getLogger("buttress")
REPR_LIMIT = 2000
POISON = "poison"


@runtime_checkable
class DeadLetterSink(Protocol):
    """Where a Retry sends calls that gave up: a ``buttress.dlq.DeadLetterQueue``."""

    def add(
        self,
        payload: Any,
        *,
        error: BaseException,
        queue: str,
        headers: Mapping[str, str] | None = None,
        classification: str | None = None,
    ) -> str:
        """Keep the failed call; its id."""

    async def aadd(
        self,
        payload: Any,
        *,
        error: BaseException,
        queue: str,
        headers: Mapping[str, str] | None = None,
        classification: str | None = None,
    ) -> str:
        """``add`` for asyncio."""


def check_sink(dead_letter: object, queue: object, name: str) -> tuple[Any, str]:
    """Validate ``dead_letter`` and ``queue`` (default: the retry's name)."""
    if dead_letter is not None and not isinstance(dead_letter, DeadLetterSink):
        raise ConfigError("dead_letter", dead_letter, "must be a DeadLetterQueue or None")
    if queue is None:
        return dead_letter, name
    if not isinstance(queue, str) or not queue:
        raise ConfigError("queue", queue, "must be a non-empty string")
    return dead_letter, queue


def payload_of(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], retry: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The payload and headers for a failed call."""
    function = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    headers = {"function": function, "retry": retry}
    return {"args": list(args), "kwargs": dict(kwargs)}, headers


def _fallback(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        text = repr((args, kwargs))
    except Exception:
        text = "<arguments with an unprintable repr>"
    return {"repr": text[:REPR_LIMIT]}


def _noted(error: BaseException, retry: str, queue: str, outcome: str | Exception) -> None:
    """Note on ``error`` what became of the call: its dead letter's id, or why there is none
    (logged, with the traceback of the exception being handled)."""
    if isinstance(outcome, Exception):
        logger.exception("retry %r: could not dead-letter the call", retry)
        outcome = f"could not dead-letter it: {type(outcome).__name__}"
    else:
        outcome = f"dead-lettered as {outcome}"
    error.add_note(f"retry {retry!r}: {outcome} (dead letter queue {queue!r})")


def send(
    sink: DeadLetterSink,
    queue: str,
    retry: str,
    error: BaseException,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """Dead-letter the call; never raises."""
    payload, headers = payload_of(fn, args, kwargs, retry)
    try:
        try:
            id = sink.add(payload, error=error, queue=queue, headers=headers)
        except DeadLetterError:  # not JSON: keep its repr, as poison
            poison = _fallback(args, kwargs)
            id = sink.add(poison, error=error, queue=queue, headers=headers, classification=POISON)
    except Exception as exc:
        _noted(error, retry, queue, exc)
        return
    _noted(error, retry, queue, id)


async def send_async(
    sink: DeadLetterSink,
    queue: str,
    retry: str,
    error: BaseException,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """``send`` for asyncio callers."""
    payload, headers = payload_of(fn, args, kwargs, retry)
    try:
        try:
            id = await sink.aadd(payload, error=error, queue=queue, headers=headers)
        except DeadLetterError:  # not JSON: keep its repr, as poison
            poison = _fallback(args, kwargs)
            id = await sink.aadd(
                poison, error=error, queue=queue, headers=headers, classification=POISON
            )
    except Exception as exc:
        _noted(error, retry, queue, exc)
        return
    _noted(error, retry, queue, id)
