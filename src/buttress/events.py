"""One observation stream: typed, frozen events delivered to listeners.

Policies emit events for state changes and rare outcomes, never for every call. Logging is just the
default listener (``LoggingListener``, logger ``buttress``); metrics, tracing and webhooks are
listeners too. A listener that raises is logged and skipped; it never breaks the call that emitted.

Policies build an event only when someone will read it (``wants(EventType)``), so a retry with
logging off and no listener for retries costs no event object.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol

from buttress._redact import redact

__all__ = [
    "BreakerStateChanged",
    "ChaosInjected",
    "Event",
    "FallbackUsed",
    "HealthAlert",
    "HedgeLaunched",
    "Listener",
    "LoggingListener",
    "RateLimited",
    "RetryExhausted",
    "RetryScheduled",
    "TimeoutExpired",
    "add_listener",
    "emit",
    "listeners",
    "remove_listener",
    "wants",
]

logger = logging.getLogger("buttress")


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event: ``source`` (the policy's name) and ``time`` (wall-clock seconds)."""

    kind: ClassVar[str] = "event"
    level: ClassVar[int] = logging.INFO

    source: str
    time: float

    def message(self) -> str:
        """One line for humans; subclasses say what happened."""
        return self.kind

    def to_dict(self) -> dict[str, Any]:
        """The event as plain data (exceptions rendered as ``Type: message``)."""
        data: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            data[f.name] = (
                redact(_render_error(value)) if isinstance(value, BaseException) else value
            )
        return data


def _render_error(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True, slots=True)
class BreakerStateChanged(Event):
    """A circuit breaker moved from ``old`` to ``new`` state."""

    kind: ClassVar[str] = "breaker.state_changed"
    level: ClassVar[int] = logging.WARNING

    old: str
    new: str
    reason: str

    def message(self) -> str:
        return f"circuit breaker {self.source!r}: {self.old} -> {self.new} ({self.reason})"


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    """Attempt ``attempt`` failed with ``error``; the next one starts after ``delay`` seconds."""

    kind: ClassVar[str] = "retry.scheduled"
    level: ClassVar[int] = logging.INFO

    attempt: int
    delay: float
    error: BaseException

    def message(self) -> str:
        return (
            f"retry {self.source!r}: attempt {self.attempt} failed with "
            f"{_render_error(self.error)}; retrying in {self.delay:.3f}s"
        )


@dataclass(frozen=True, slots=True)
class RetryExhausted(Event):
    """Retrying stopped after ``attempts`` attempts; ``reason`` says why."""

    kind: ClassVar[str] = "retry.exhausted"
    level: ClassVar[int] = logging.WARNING

    attempts: int
    reason: str
    error: BaseException | None

    def message(self) -> str:
        err = _render_error(self.error) if self.error is not None else "a rejected result"
        return (
            f"retry {self.source!r}: gave up after {self.attempts} attempts ({self.reason}): {err}"
        )


@dataclass(frozen=True, slots=True)
class TimeoutExpired(Event):
    """A call ran past its ``seconds`` deadline."""

    kind: ClassVar[str] = "timeout.expired"
    level: ClassVar[int] = logging.DEBUG

    seconds: float

    def message(self) -> str:
        return f"timeout {self.source!r}: call exceeded {self.seconds:g}s"


@dataclass(frozen=True, slots=True)
class FallbackUsed(Event):
    """The fallback answered instead of the call; ``error`` is None when a result was rejected."""

    kind: ClassVar[str] = "fallback.used"
    level: ClassVar[int] = logging.DEBUG

    error: BaseException | None

    def message(self) -> str:
        cause = _render_error(self.error) if self.error is not None else "rejected result"
        return f"fallback {self.source!r} used after {cause}"


@dataclass(frozen=True, slots=True)
class HedgeLaunched(Event):
    """The primary call was slow, so hedged call number ``hedge`` started."""

    kind: ClassVar[str] = "hedge.launched"
    level: ClassVar[int] = logging.DEBUG

    hedge: int

    def message(self) -> str:
        return f"hedge {self.source!r}: launched hedged call {self.hedge}"


@dataclass(frozen=True, slots=True)
class ChaosInjected(Event):
    """Chaos injected a ``fault`` (exception type name) or ``latency`` seconds."""

    kind: ClassVar[str] = "chaos.injected"
    level: ClassVar[int] = logging.DEBUG

    fault: str | None = None
    latency: float = 0.0

    def message(self) -> str:
        what = f"fault {self.fault}" if self.fault else f"latency {self.latency:g}s"
        return f"chaos {self.source!r}: injected {what}"


@dataclass(frozen=True, slots=True)
class HealthAlert(Event):
    """Health check ``source`` changed from ``old`` to ``new`` status (after its cooldown)."""

    kind: ClassVar[str] = "health.alert"
    level: ClassVar[int] = logging.WARNING

    old: str
    new: str
    output: str = ""

    def message(self) -> str:
        tail = f": {self.output}" if self.output else ""
        return f"health check {self.source!r}: {self.old} -> {self.new}{tail}"


@dataclass(frozen=True, slots=True)
class RateLimited(Event):
    """Rate limiter ``source`` refused ``refused`` requests since its last such event (at most
    one a second); ``retry_after`` is the latest refusal's. Keys are never included."""

    kind: ClassVar[str] = "ratelimit.refused"
    level: ClassVar[int] = logging.INFO

    refused: int
    retry_after: float

    def message(self) -> str:
        return (
            f"rate limiter {self.source!r}: refused {self.refused} request(s)"
            f" (retry after {self.retry_after:.3f}s)"
        )


class Listener(Protocol):
    """Anything called with each event."""

    def __call__(self, event: Event) -> None: ...


@dataclass(slots=True)
class LoggingListener:
    """Logs each event under ``logger`` at the event's level, with its fields in ``extra``."""

    logger: logging.Logger = field(default=logger)

    def __call__(self, event: Event) -> None:
        if self.logger.isEnabledFor(event.level):
            self.logger.log(
                event.level,
                redact(event.message()),
                extra={"buttress_event": event.kind, "buttress_source": event.source},
            )


_lock = threading.RLock()
_default = LoggingListener()
# (listener, the kinds it takes or None for all), in delivery order.
_entries: tuple[tuple[Listener, frozenset[str] | None], ...] = ((_default, None),)
# What the listeners other than the default one take: every kind, or these kinds.
_others_take_all = False
_others_kinds: frozenset[str] = frozenset()
_default_on = True


def _refresh() -> None:
    # Allocation here can run a garbage-collection finalizer that removes a listener (the lock
    # is re-entrant for that): recompute until the entries did not change underneath.
    global _others_take_all, _others_kinds, _default_on
    while True:
        entries = _entries
        others = [kinds for listener, kinds in entries if listener is not _default]
        take_all = any(kinds is None for kinds in others)
        kinds_wanted = frozenset().union(*(kinds for kinds in others if kinds is not None))
        default_on = any(listener is _default for listener, _ in entries)
        if entries is _entries:
            _others_take_all, _others_kinds, _default_on = take_all, kinds_wanted, default_on
            return


def add_listener(listener: Listener, *, kinds: Iterable[str] | None = None) -> None:
    """Deliver later events to ``listener``: every event, or only those of ``kinds``
    (e.g. ``{"breaker.state_changed"}``), so that events nobody else reads are not built."""
    global _entries
    with _lock:
        _entries = (*_entries, (listener, None if kinds is None else frozenset(kinds)))
        _refresh()


def remove_listener(listener: Listener) -> None:
    """Stop delivering events to ``listener`` (the default logging listener can be removed too)."""
    global _entries
    with _lock:
        _entries = tuple(entry for entry in _entries if entry[0] is not listener)
        _refresh()


def listeners() -> tuple[Listener, ...]:
    """The listeners in delivery order."""
    return tuple(listener for listener, _ in _entries)


def wants(event: type[Event] | int) -> bool:
    """Whether an event of this type (or of this logging level) would reach anyone; policies
    skip building events that nobody reads."""
    if isinstance(event, int):
        level, kind = event, None
    else:
        level, kind = event.level, event.kind
    if _others_take_all or (kind is None and _others_kinds) or kind in _others_kinds:
        return True
    return _default_on and logger.isEnabledFor(level)


def emit(event: Event) -> None:
    """Deliver ``event`` to every listener that takes its kind; a listener's error is logged,
    never raised."""
    for listener, kinds in _entries:
        if kinds is not None and event.kind not in kinds:
            continue
        try:
            listener(event)
        except Exception:
            logger.exception("buttress event listener %r failed on %s", listener, event.kind)
