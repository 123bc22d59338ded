"""What a dead letter is: its status and classification, the record, filters, pages and stats.

Everything here is plain data (frozen dataclasses and string enums), so that the admin API, the
dashboard and the CLI can render it without knowing a backend. Payloads and headers are JSON;
``encode_payload`` is the one place a payload is checked, before anything is written.
"""

from __future__ import annotations

import functools
import json
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from math import isfinite
from typing import Any

from buttress.errors import ConfigError, DeadLetterError

__all__ = [
    "OPEN_STATUSES",
    "Attempt",
    "Classification",
    "DeadLetter",
    "ErrorInfo",
    "Filter",
    "Page",
    "Stats",
    "Status",
    "encode_payload",
]

TRACEBACK_LIMIT = 8000
"""Characters of traceback text kept per error (the end, where the error is)."""
MESSAGE_LIMIT = 2000


class Status(StrEnum):
    """Where a dead letter is in its life."""

    PENDING = "pending"
    """Waiting for its next attempt (``next_attempt_at``)."""
    RETRYING = "retrying"
    """Leased by a worker that is re-processing it now."""
    PARKED = "parked"
    """Needs a person: the error is permanent or poison, or attempts ran out."""
    RESOLVED = "resolved"
    """A handler processed it successfully."""
    DISCARDED = "discarded"
    """A person discarded it (with a reason)."""


OPEN_STATUSES = frozenset({Status.PENDING, Status.RETRYING, Status.PARKED})
"""Statuses of the records that still need something: stats count their errors."""


class Classification(StrEnum):
    """Why it failed, which decides what happens next."""

    TRANSIENT = "transient"
    """Likely to pass on its own: retried with backoff."""
    RATE_LIMITED = "rate_limited"
    """Refused for rate: retried no earlier than the error's ``retry_after``."""
    TIMEOUT = "timeout"
    """Took too long: retried with backoff."""
    PERMANENT = "permanent"
    """Will fail the same way every time: parked at once."""
    POISON = "poison"
    """Cannot be decoded or replayed: parked at once."""
    UNKNOWN = "unknown"
    """No rule matched: retried with backoff."""


PARKING = frozenset({Classification.PERMANENT, Classification.POISON})
CLASSIFICATIONS = {c.value: c for c in Classification}
"""Stored value -> member (a dict lookup is several times quicker than calling the enum)."""
STATUSES = {s.value: s for s in Status}


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An error as text: its ``type`` (qualified name), ``message`` and ``traceback``."""

    type: str
    message: str
    traceback: str = ""

    @classmethod
    def of(cls, error: BaseException, *, with_traceback: bool = True) -> ErrorInfo:
        """Describe ``error``; the traceback is kept when it has one (the last 8000 chars)."""
        kind = type(error)
        name = kind.__qualname__ if kind.__module__ == "builtins" else _qualified(kind)
        text = ""
        if with_traceback and error.__traceback__ is not None:
            text = "".join(traceback.format_exception(error))[-TRACEBACK_LIMIT:]
        return cls(name, _message(error), text)

    def to_dict(self) -> dict[str, str]:
        """As plain data."""
        return {"type": self.type, "message": self.message, "traceback": self.traceback}


def _qualified(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _message(error: BaseException) -> str:
    try:
        text = str(error)
    except Exception:  # a broken __str__ must not lose the dead letter
        text = f"<{type(error).__name__} with an unprintable message>"
    return text[:MESSAGE_LIMIT]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One failed attempt: ``number`` (0 is the failure that brought the message in), when
    (``at``, wall-clock seconds), the error's type and message, and its classification."""

    number: int
    at: float
    error_type: str
    message: str
    classification: Classification

    def to_dict(self) -> dict[str, Any]:
        """As plain data (the form stored in the backends)."""
        return {
            "number": self.number,
            "at": self.at,
            "error_type": self.error_type,
            "message": self.message,
            "classification": self.classification.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attempt:
        """The inverse of ``to_dict``."""
        return cls(
            int(data["number"]),
            float(data["at"]),
            str(data["error_type"]),
            str(data["message"]),
            Classification(data["classification"]),
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A failed message kept for later: everything the issue lists, as read from a backend.

    ``attempts`` counts deliveries to a handler by the DLQ (the original failure is not one);
    ``next_attempt_at`` is when a pending message is due, or when a retrying one's lease ends
    (None for parked, resolved and discarded ones); ``note`` is the reason given when discarded.
    """

    id: str
    queue: str
    payload: Any
    headers: Mapping[str, str]
    key: str | None
    error: ErrorInfo
    classification: Classification
    history: tuple[Attempt, ...]
    first_failed_at: float
    last_failed_at: float
    next_attempt_at: float | None
    max_attempts: int
    attempts: int
    status: Status
    updated_at: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """As plain data (JSON-ready), for APIs and dashboards."""
        return {
            "id": self.id,
            "queue": self.queue,
            "payload": self.payload,
            "headers": dict(self.headers),
            "key": self.key,
            "error": self.error.to_dict(),
            "classification": self.classification.value,
            "history": [attempt.to_dict() for attempt in self.history],
            "first_failed_at": self.first_failed_at,
            "last_failed_at": self.last_failed_at,
            "next_attempt_at": self.next_attempt_at,
            "max_attempts": self.max_attempts,
            "attempts": self.attempts,
            "status": self.status.value,
            "updated_at": self.updated_at,
            "note": self.note,
        }


def _one_of(field_name: str, value: object, kind: type[StrEnum]) -> str | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return str(kind(value))
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ConfigError(field_name, value, f"must be one of {allowed}") from None


@dataclass(frozen=True, slots=True)
class Filter:
    """Which dead letters: every given field must match (None matches anything).

    ``queue``, ``status``, ``classification``, ``error_type`` (the qualified name, as in
    ``ErrorInfo.type``), ``since`` / ``until`` (wall-clock bounds on ``first_failed_at``,
    ``since <= t < until``) and ``ids``.
    """

    queue: str | None = None
    status: Status | str | None = None
    classification: Classification | str | None = None
    error_type: str | None = None
    since: float | None = None
    until: float | None = None
    ids: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", _one_of("status", self.status, Status))
        kind = _one_of("classification", self.classification, Classification)
        object.__setattr__(self, "classification", kind)
        for name in ("queue", "error_type"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(name, value, "must be a non-empty string or None")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ConfigError(name, value, "must be wall-clock seconds or None")
        if self.ids is not None:
            ids = tuple(self.ids)
            if not all(isinstance(i, str) for i in ids):
                raise ConfigError("ids", self.ids, "must be a sequence of id strings")
            object.__setattr__(self, "ids", ids)

    def matches(self, letter: DeadLetter) -> bool:
        """Whether ``letter`` passes this filter."""
        return (
            (self.queue is None or letter.queue == self.queue)
            and (self.status is None or letter.status == self.status)
            and (self.classification is None or letter.classification == self.classification)
            and (self.error_type is None or letter.error.type == self.error_type)
            and (self.since is None or letter.first_failed_at >= self.since)
            and (self.until is None or letter.first_failed_at < self.until)
            and (self.ids is None or letter.id in self.ids)
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set, as plain data."""
        data = {
            "queue": self.queue,
            "status": self.status,
            "classification": self.classification,
            "error_type": self.error_type,
            "since": self.since,
            "until": self.until,
            "ids": list(self.ids) if self.ids is not None else None,
        }
        return {name: value for name, value in data.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing, newest first; ``cursor`` fetches the next (None: no more)."""

    items: tuple[DeadLetter, ...]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Stats:
    """Counts and rates of one dead letter queue at ``time``.

    ``by_status`` has every status; ``by_queue`` maps a queue to its counts by status;
    ``by_classification`` and ``by_error_type`` count the open records (pending, retrying,
    parked); ``oldest_pending_at`` is the first failure time of the oldest pending or retrying
    record; ``arrival_rate`` is records added per second over the last ``rate_window`` seconds.
    """

    time: float
    total: int
    by_status: Mapping[str, int]
    by_queue: Mapping[str, Mapping[str, int]]
    by_classification: Mapping[str, int]
    by_error_type: Mapping[str, int]
    oldest_pending_at: float | None
    arrival_rate: float
    rate_window: float

    @property
    def parked(self) -> int:
        """Records that need a person."""
        return self.by_status.get(Status.PARKED.value, 0)

    @property
    def oldest_pending_age(self) -> float | None:
        """Seconds since the oldest pending record first failed (None when there is none)."""
        return None if self.oldest_pending_at is None else self.time - self.oldest_pending_at

    def to_dict(self) -> dict[str, Any]:
        """As plain data."""
        return {
            "time": self.time,
            "total": self.total,
            "by_status": dict(self.by_status),
            "by_queue": {queue: dict(counts) for queue, counts in self.by_queue.items()},
            "by_classification": dict(self.by_classification),
            "by_error_type": dict(self.by_error_type),
            "oldest_pending_at": self.oldest_pending_at,
            "oldest_pending_age": self.oldest_pending_age,
            "arrival_rate": self.arrival_rate,
            "rate_window": self.rate_window,
            "parked": self.parked,
        }


def empty_statuses() -> dict[str, int]:
    """A count of zero for every status."""
    return {status.value: 0 for status in Status}


# Compact, strict JSON: NaN and infinities are refused, as they are not JSON.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_ENCODE = _ENCODER.encode


def _payload_encoder() -> Callable[[object], str]:
    """``_ENCODE`` for payloads, twice as fast where the C encoder exists: built once, without
    the cycle check (a cycle ends in ``RecursionError``, which ``encode_payload`` reports)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _ENCODE
    try:
        chunks = make(
            None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",",
            False, False, False,
        )  # fmt: skip
        if chunks({"a": [1, 2.5, None, True]}, 0)[0] != '{"a":[1,2.5,null,true]}':
            return _ENCODE  # not the encoder this was written for
    except Exception:  # another Python's signature: the plain encoder is as correct
        return _ENCODE
    join = "".join

    def encode(value: object) -> str:
        if isinstance(value, str):
            return _ENCODE(value)  # the C encoder takes containers and scalars, not bare str
        return join(chunks(value, 0))

    return encode


_ENCODE_PAYLOAD = _payload_encoder()


def encode_payload(payload: object, field_name: str = "payload") -> str:
    """``payload`` as JSON text; ``DeadLetterError`` naming ``field_name`` if it is not JSON."""
    try:
        return _ENCODE_PAYLOAD(payload)
    except (TypeError, ValueError, RecursionError) as exc:
        raise DeadLetterError(
            f"{field_name}: must be JSON (dicts, lists, strings, numbers, booleans, None), "
            f"got {type(payload).__name__}: {exc}"
        ) from None


def encode_headers(headers: Mapping[str, str] | None, field_name: str = "headers") -> str | None:
    """Headers as JSON text (None when empty); keys and values must be strings."""
    if not headers:
        return None
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ConfigError(field_name, headers, "must be a mapping of str to str")
    return _ENCODE(dict(headers))


def encode_json(value: object) -> str:
    """Compact JSON for the library's own data (history, error blobs)."""
    return _ENCODE(value)


def encode_history(history: Iterable[Attempt]) -> str:
    """The history as stored: a JSON list of attempts."""
    return _ENCODE([attempt.to_dict() for attempt in history])


_STRING = json.encoder.encode_basestring  # the C escaper when available


def first_history(at: float, error: ErrorInfo, kind: Classification) -> str:
    """``encode_history`` of the one original failure, without building dicts (every add)."""
    if not isfinite(at):
        raise ValueError(f"time must be finite, got {at!r}")
    return (
        f'[{{"number":0,"at":{at!r},"error_type":{_STRING(error.type)},'
        f'"message":{_STRING(error.message)},"classification":"{kind._value_}"}}]'
    )


@functools.lru_cache(maxsize=1024)
def decode_history(text: str | None) -> tuple[Attempt, ...]:
    """The inverse of ``encode_history`` (cached: the records of one batch share a history)."""
    if not text:
        return ()
    kinds = CLASSIFICATIONS
    return tuple(
        Attempt(d["number"], d["at"], d["error_type"], d["message"], kinds[d["classification"]])
        for d in json.loads(text)
    )
