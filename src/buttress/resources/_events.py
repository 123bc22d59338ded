"""The events of resource management: a client's connections rebuilt, memory collected or rising."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from buttress.events import Event

__all__ = ["ClientRecreated", "MemoryCollected", "MemoryRising"]

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ClientRecreated(Event):
    """Pooled client ``source`` got a new transport (connection pool), generation
    ``generation``, after ``errors`` connection errors in a row, the last being ``error``."""

    kind: ClassVar[str] = "client_pool.recreated"
    level: ClassVar[int] = logging.WARNING

    errors: int
    generation: int
    error: str

    def message(self) -> str:
        return (
            f"client {self.source!r}: connections rebuilt (generation {self.generation}) after "
            f"{self.errors} connection errors in a row; last: {self.error}"
        )


@dataclass(frozen=True, slots=True)
class MemoryCollected(Event):
    """Memory watch ``source`` forced a garbage collection at ``before`` bytes of RSS; ``after``
    is the RSS once it finished and ``found`` the unreachable objects it found."""

    kind: ClassVar[str] = "memory.collected"
    level: ClassVar[int] = logging.INFO

    before: int
    after: int
    found: int

    def message(self) -> str:
        return (
            f"memory {self.source!r}: forced collection at {self.before / _MIB:.1f} MiB RSS, "
            f"{self.found} objects found, now {self.after / _MIB:.1f} MiB"
        )


@dataclass(frozen=True, slots=True)
class MemoryRising(Event):
    """Memory watch ``source`` saw RSS rise ``samples`` samples in a row, by ``growth`` bytes over
    ``seconds``, to ``rss`` bytes."""

    kind: ClassVar[str] = "memory.rising"
    level: ClassVar[int] = logging.WARNING

    rss: int
    growth: int
    samples: int
    seconds: float

    def message(self) -> str:
        return (
            f"memory {self.source!r}: RSS rose {self.samples} samples in a row, "
            f"+{self.growth / _MIB:.1f} MiB in {self.seconds:.0f}s, to {self.rss / _MIB:.1f} MiB"
        )
