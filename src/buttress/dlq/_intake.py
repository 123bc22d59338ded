"""How a new dead letter is checked and shaped before anything is written.

``encode_many`` turns payloads into JSON texts (all of them, before any write: a bad one raises
``DeadLetterError`` naming ``payloads[i]`` and nothing is stored); ``build_batch`` classifies
the error and decides the first attempt's time (now plus the first backoff delay, or the
error's ``retry_after`` if later; parked at once for permanent and poison errors).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from buttress import _options as opt
from buttress._clock import Clock
from buttress.dlq._backend import Backend, NewBatch
from buttress.dlq._classify import Classifier
from buttress.dlq._decide import MAX_HINT, backoff_delay
from buttress.dlq._records import (
    Classification,
    ErrorInfo,
    Status,
    encode_headers,
    encode_payload,
    first_history,
)
from buttress.errors import ConfigError
from buttress.retry import Backoff

__all__ = ["DEFERRED", "build_batch", "check_key", "encode_many", "open_backend", "queue_name"]

KEY_LIMIT = 512
DEFERRED = ErrorInfo("Deferred", "queued for later without an error")
"""The error of a record added with ``error=None`` (work deferred on purpose: transient)."""


def open_backend(url: str, *, name: str = "dlq", prefix: str = "buttress:") -> Backend:
    """The backend for ``url``: ``sqlite:///path.db`` (or ``sqlite:///:memory:``) or
    ``redis://host:6379/0`` (also ``rediss://``, ``unix://``; needs ``buttress[redis]``)."""
    from buttress.stores._url import _parse

    kind, target = _parse(url)
    if kind == "sqlite":
        from buttress.dlq._sqlite import SQLiteBackend

        return SQLiteBackend(target)
    if kind == "redis":
        from buttress.dlq._redis import RedisBackend

        return RedisBackend(target, name=name, prefix=prefix)
    raise ConfigError("url", url, "must be sqlite:///path.db or redis://host:port/db")


def queue_name(value: object, field: str = "queue") -> str:
    """A queue (or DLQ) name: a non-empty string of at most 200 characters."""
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ConfigError(field, value, "must be a non-empty string of at most 200 characters")
    return value


def check_key(value: object, field: str) -> str | None:
    """An idempotency key: None or a string of 1..512 characters."""
    if value is not None and (not isinstance(value, str) or not value or len(value) > KEY_LIMIT):
        raise ConfigError(field, value, f"must be None or a string of 1..{KEY_LIMIT} characters")
    return value


def encode_many(
    payloads: Iterable[Any], keys: Sequence[str | None] | None
) -> tuple[list[str], list[str | None] | None]:
    """Every payload as JSON text and the checked keys (same length), or an error."""
    texts = [encode_payload(p, f"payloads[{i}]") for i, p in enumerate(payloads)]
    if keys is None:
        return texts, None
    checked = [check_key(k, f"keys[{i}]") for i, k in enumerate(keys)]
    if len(checked) != len(texts):
        raise ConfigError("keys", f"{len(checked)} keys", f"must match the {len(texts)} payloads")
    return texts, checked


def build_batch(
    payloads: Sequence[str],
    keys: Sequence[str | None] | None,
    error: BaseException | ErrorInfo | None,
    queue: str,
    max_attempts: int,
    headers: Mapping[str, str] | None,
    classification: Classification | str | None,
    *,
    classifier: Classifier,
    backoff: Backoff,
    rng: random.Random,
    clock: Clock,
) -> NewBatch:
    """The batch to insert: classified, scheduled (or parked), with its first history entry."""
    queue = queue_name(queue)
    opt.integer("max_attempts", max_attempts)
    encoded_headers = encode_headers(headers)
    hint: float | None = None
    if error is None:
        info, kind = DEFERRED, Classification.TRANSIENT
    elif isinstance(error, ErrorInfo):
        info, kind = error, Classification.UNKNOWN
    elif isinstance(error, BaseException):
        info = ErrorInfo.of(error)
        kind, hint = classifier.assess(error, clock.time)
    else:
        raise ConfigError("error", error, "must be an exception, an ErrorInfo or None")
    if classification is not None:
        try:
            kind = Classification(classification)
        except ValueError:
            allowed = ", ".join(c.value for c in Classification)
            raise ConfigError(
                "classification", classification, f"must be one of {allowed}"
            ) from None
    now = clock.time()
    due: float | None = None
    status = Status.PARKED
    if kind is not Classification.PERMANENT and kind is not Classification.POISON:
        delay = backoff_delay(backoff, 0, rng)
        if hint is not None and hint > delay:
            delay = min(hint, MAX_HINT)
        status, due = Status.PENDING, now + delay
    return NewBatch(
        queue,
        payloads,
        keys,
        encoded_headers,
        info,
        kind,
        first_history(now, info, kind),
        now,
        due,
        status,
        max_attempts,
    )
