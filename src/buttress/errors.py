"""The exceptions buttress raises.

Every error is a ``ButtressError``; the tree, at a glance::

    ButtressError
    ├── ConfigError (also ValueError)           bad option: names the field, the value, the range
    ├── RejectedError                           a policy refused the call before running it
    │   ├── CircuitOpenError                    the breaker is open (has retry_after)
    │   ├── RateLimitedError                    a rate limit refused the call (has retry_after)
    │   ├── BulkheadFullError                   no free slot and no room in the queue
    │   └── LoadShedError                       shed under overload (lowest priority first)
    ├── TimeoutError (also builtins.TimeoutError)   the call ran past its deadline
    ├── StoreError                              a state store failed (URL with password masked)
    ├── DeadLetterError                         the dead letter queue refused an operation
    ├── AlreadyRunningError                     single_instance: another copy holds the lock
    └── BackupError                             a backup or restore failed
        ├── ChecksumMismatchError               an artifact does not match its recorded SHA-256
        └── DecryptionError                     wrong key or tampered ciphertext

A rejection is a new exception object each time, so tracebacks never pile up on a shared instance.
The messages of rejections are built when they are read, which keeps rejecting cheap.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from buttress.lock import LockHolder

__all__ = [
    "AlreadyRunningError",
    "BackupError",
    "BulkheadFullError",
    "ButtressError",
    "ChecksumMismatchError",
    "CircuitOpenError",
    "ConfigError",
    "DeadLetterError",
    "DecryptionError",
    "LoadShedError",
    "RateLimitedError",
    "RejectedError",
    "StoreError",
    "TimeoutError",
]


class ButtressError(Exception):
    """Base class of every error buttress raises."""


class ConfigError(ButtressError, ValueError):
    """An option is invalid; the message names the field, the value and what is allowed."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field}: {expected}, got {value!r}")

    def __reduce__(self) -> tuple[Callable[..., ConfigError], tuple[object, ...]]:
        # Picklable (Celery results, process pools) although __init__ takes three arguments.
        return (type(self), (self.field, self.value, self.expected))


class RejectedError(ButtressError):
    """A policy refused to run the call; ``retry_after`` (seconds or None) says when to retry.

    Built as ``RejectedError(source, retry_after=None)``. The arguments live in ``args`` and are
    read back by properties, so hot paths can build a rejection with the C-level
    ``BaseException.__new__(cls, source, retry_after)`` and skip the Python ``__init__``.
    """

    def __init__(self, source: str, retry_after: float | None = None) -> None:
        super().__init__(source, retry_after)

    @property
    def source(self) -> str:
        """The name of the policy that rejected the call."""
        return str(self.args[0]) if self.args else ""

    @property
    def retry_after(self) -> float | None:
        """Seconds after which trying again may succeed, or None if unknown."""
        value = self.args[1] if len(self.args) > 1 else None
        if value is None:
            return None
        return value.total_seconds() if isinstance(value, timedelta) else float(value)

    def _describe(self) -> str:
        return "rejected"

    def __str__(self) -> str:
        text = f"{self.source}: {self._describe()}"
        retry_after = self.retry_after
        if retry_after is not None:
            text += f" (retry after {retry_after:.3f}s)"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r}, retry_after={self.retry_after!r})"


class CircuitOpenError(RejectedError):
    """The circuit breaker named ``source`` is open and rejected the call."""

    def _describe(self) -> str:
        return "circuit breaker is open"


class RateLimitedError(RejectedError):
    """A rate limiter refused the call."""

    def _describe(self) -> str:
        return "rate limited"


class BulkheadFullError(RejectedError):
    """The bulkhead has no free slot and no room in its queue (or the queue wait ran out)."""

    def _describe(self) -> str:
        return "bulkhead is full"


class LoadShedError(RejectedError):
    """The call was shed to protect the service under overload."""

    def _describe(self) -> str:
        return "load shed"


class TimeoutError(ButtressError, builtins.TimeoutError):
    """The call ran past its deadline; also a ``builtins.TimeoutError``."""

    def __init__(self, source: str, seconds: float) -> None:
        self.source = source
        self.seconds = seconds
        super().__init__(f"{source}: timed out after {seconds:g}s")

    def __reduce__(self) -> tuple[type[TimeoutError], tuple[str, float]]:
        return (type(self), (self.source, self.seconds))


class StoreError(ButtressError):
    """A state store operation failed; the message names the operation and the masked URL."""


class DeadLetterError(ButtressError):
    """The dead letter queue refused an operation (for example a payload that is not JSON)."""


class AlreadyRunningError(ButtressError):
    """``single_instance(name)`` is held elsewhere; ``holder`` (a ``buttress.lock.LockHolder``, or
    None when unknown) says by whom: pid, host, command and start time."""

    def __init__(self, name: str, holder: LockHolder | None = None, path: str = "") -> None:
        self.name, self.holder, self.path = name, holder, path
        super().__init__(f"{name!r} is already running: {holder or 'holder unknown'}")

    def __reduce__(self) -> tuple[type[AlreadyRunningError], tuple[Any, ...]]:
        return (type(self), (self.name, self.holder, self.path))


class BackupError(ButtressError):
    """A backup, verification or restore failed."""


class ChecksumMismatchError(BackupError):
    """An artifact's SHA-256 does not match the catalog."""


class DecryptionError(BackupError):
    """An artifact could not be decrypted: wrong key, or the ciphertext was altered."""
