"""What a ``WorkQueue`` reports: its options, its snapshot, and its events."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from buttress import _options
from buttress.errors import ConfigError
from buttress.events import Event, _render_error

__all__ = [
    "QueueItemExpired",
    "QueueItemFailed",
    "QueueWorkersChanged",
    "WorkQueueOptions",
    "WorkQueueSnapshot",
]


@dataclass(frozen=True, slots=True)
class WorkQueueOptions:
    """A work queue's options; see ``WorkQueue``."""

    workers: int
    max_size: int
    priorities: int
    min_workers: int
    max_workers: int
    deadline: float | None
    idle_timeout: float

    @classmethod
    def build(
        cls,
        workers: object,
        max_size: object,
        priorities: object,
        min_workers: object,
        max_workers: object,
        deadline: object,
        idle_timeout: object,
    ) -> WorkQueueOptions:
        """Validate the options; a bad one raises ``ConfigError`` naming it."""
        count = _options.integer("workers", workers, minimum=0 if max_workers else 1)
        lowest = _options.integer(
            "min_workers", count if min_workers is None else min_workers, minimum=0
        )
        highest = _options.integer(
            "max_workers", count if max_workers is None else max_workers, minimum=max(1, lowest)
        )
        if not lowest <= count <= highest:
            raise ConfigError(
                "workers", workers, f"must be in [min_workers, max_workers] = [{lowest}, {highest}]"
            )
        return cls(
            count,
            _options.integer("max_size", max_size),
            _options.integer("priorities", priorities),
            lowest,
            highest,
            _options.optional_duration("deadline", deadline),
            _options.duration("idle_timeout", idle_timeout, allow_zero=True),
        )


@dataclass(frozen=True, slots=True)
class WorkQueueSnapshot:
    """A work queue's backpressure signals and counters.

    ``depth`` items wait (``depth_by_priority[0]`` at the highest priority); the oldest has
    waited ``oldest_age`` seconds (None when empty). ``workers`` run, ``busy`` of them handling
    an item. Since the start: ``submitted`` items were accepted, ``processed`` handled,
    ``failed`` raised, ``expired`` passed their deadline while queued, ``refused`` were turned
    away at a full queue and ``evicted`` were pushed out by a higher priority.
    """

    name: str
    depth: int
    depth_by_priority: tuple[int, ...]
    oldest_age: float | None
    max_size: int
    workers: int
    busy: int
    min_workers: int
    max_workers: int
    submitted: int
    processed: int
    failed: int
    expired: int
    refused: int
    evicted: int
    shedding: bool
    closed: bool


@dataclass(frozen=True, slots=True)
class QueueItemExpired(Event):
    """An item of ``priority`` waited ``waited`` seconds, past its ``deadline``, and was dropped
    without running."""

    kind: ClassVar[str] = "queue.item_expired"
    level: ClassVar[int] = logging.INFO

    priority: int
    waited: float
    deadline: float

    def message(self) -> str:
        return (
            f"work queue {self.source!r}: dropped an item of priority {self.priority} after "
            f"{self.waited:.3f}s in the queue (deadline {self.deadline:g}s)"
        )


@dataclass(frozen=True, slots=True)
class QueueItemFailed(Event):
    """The handler raised ``error`` on an item of ``priority``. Logged at DEBUG: the submitter
    gets the error from its future."""

    kind: ClassVar[str] = "queue.item_failed"
    level: ClassVar[int] = logging.DEBUG

    priority: int
    error: BaseException

    def message(self) -> str:
        return (
            f"work queue {self.source!r}: handler failed on an item of priority "
            f"{self.priority}: {_render_error(self.error)}"
        )


@dataclass(frozen=True, slots=True)
class QueueWorkersChanged(Event):
    """The worker pool grew or shrank from ``old`` to ``new`` workers."""

    kind: ClassVar[str] = "queue.workers_changed"
    level: ClassVar[int] = logging.DEBUG

    old: int
    new: int

    def message(self) -> str:
        return f"work queue {self.source!r}: workers {self.old} -> {self.new}"
