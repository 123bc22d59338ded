"""The contract every backend keeps, and the plain data that crosses it.

The queue decides (classification, schedule, history); a backend only stores and applies, in
one atomic step per call, and is safe to use from several threads. Every time a backend stores
is the queue's clock's wall time, passed in as ``now``. Implementations: ``SQLiteBackend``
(``sqlite:///path.db``, the embedded default) and ``RedisBackend`` (``redis://...``), both
checked by one contract suite (``tests/dlq/test_contract.py``).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

from buttress.dlq._records import (
    Attempt,
    Classification,
    DeadLetter,
    ErrorInfo,
    Filter,
    Page,
    Stats,
    Status,
)

__all__ = ["Backend", "Delivery", "NewBatch", "Outcome", "decode_payload"]


class NewBatch(NamedTuple):
    """Records to insert in one atomic step; they share everything but payload and key.

    ``payloads`` are JSON texts; ``keys`` (when given) has one idempotency key or None per
    payload; ``history`` is the JSON text of the original failure; ``status`` is pending (due at
    ``next_attempt_at``) or parked (``next_attempt_at`` None). A named tuple: one is built for
    every add, and a frozen dataclass of eleven fields costs about a microsecond to build.
    """

    queue: str
    payloads: Sequence[str]
    keys: Sequence[str | None] | None
    headers: str | None
    error: ErrorInfo
    classification: Classification
    history: str
    now: float
    next_attempt_at: float | None
    status: Status
    max_attempts: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """A leased dead letter. ``lost``: its previous lease ran out (the worker died or was too
    slow). ``problem``: why its stored payload could not be decoded (then it is poison)."""

    letter: DeadLetter
    lost: bool = False
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a worker's attempt led to: ``status`` resolved, pending (again, at
    ``next_attempt_at``) or parked. The other fields replace the stored ones when not None."""

    id: str
    status: Status
    attempts: int
    next_attempt_at: float | None = None
    error: ErrorInfo | None = None
    classification: Classification | None = None
    history: tuple[Attempt, ...] | None = None
    last_failed_at: float | None = None


_SCAN: Callable[[str, int], tuple[Any, int]] = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009


def decode_payload(text: str) -> tuple[object, str | None]:
    """A stored payload and None, or the raw text and why it does not decode."""
    try:
        # The scanner straight away: what json.loads does, minus its checks (the hot path
        # of the worker); anything unusual goes through json.loads for its error message.
        value, end = _SCAN(text, 0)
        if end == len(text):
            return value, None
    except (StopIteration, ValueError, TypeError, IndexError):
        pass
    try:
        return json.loads(text), None
    except (ValueError, TypeError) as exc:
        return text, f"{type(exc).__name__}: {exc}"


@runtime_checkable
class Backend(Protocol):
    """Where dead letters live. Every method is one atomic step; all are thread-safe."""

    @property
    def url(self) -> str:
        """Where the records are, with any password masked."""

    def insert(self, batch: NewBatch) -> builtins.list[str]:
        """Store the batch durably and return one id per payload, in order; a payload whose
        idempotency key is already stored gets the existing record's id instead."""

    async def ainsert(self, batch: NewBatch) -> builtins.list[str]:
        """``insert`` for asyncio callers."""

    def get(self, id: str) -> DeadLetter | None:
        """The record ``id``, or None."""

    def list(self, filter: Filter, limit: int, cursor: str | None) -> Page:
        """Matching records, newest first, at most ``limit``, after ``cursor``."""

    def lease(
        self, queues: Sequence[str], now: float, limit: int, lease_until: float, token: str
    ) -> builtins.list[Delivery]:
        """Take up to ``limit`` due records of ``queues``: pending ones whose time has come and
        retrying ones whose lease ended. They become retrying until ``lease_until`` under
        ``token``, and their ``attempts`` grow by one."""

    def complete(self, outcomes: Sequence[Outcome], token: str, now: float) -> builtins.list[bool]:
        """Apply each outcome if its record is still leased under ``token``; which applied."""

    def complete_and_lease(
        self,
        outcomes: Sequence[Outcome],
        token: str,
        now: float,
        queues: Sequence[str],
        limit: int,
        lease_until: float,
        next_token: str,
    ) -> tuple[builtins.list[bool], builtins.list[Delivery]]:
        """``complete`` then ``lease`` (under ``next_token``), as one step where the backend
        can (a worker's loop: one commit per batch on SQLite)."""

    def requeue(self, filter: Filter, now: float) -> int:
        """Make matching pending or parked records due at ``now``; how many."""

    def edit(self, id: str, payload: str, now: float) -> bool:
        """Replace the payload of a pending or parked record; whether it was one."""

    def discard(self, filter: Filter, reason: str, now: float) -> int:
        """Mark matching open records discarded with ``reason``; how many."""

    def delete(self, filter: Filter) -> int:
        """Delete matching records whatever their status; how many."""

    def cleanup(self, before: float) -> int:
        """Delete resolved and discarded records last updated before ``before``; how many."""

    def stats(self, now: float, window: float) -> Stats:
        """Counts by status, queue, classification and error type; oldest pending; arrivals."""

    def close(self) -> None:
        """Release connections and threads; idempotent."""
