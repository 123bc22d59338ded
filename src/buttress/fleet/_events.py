"""Events of the fleet machinery: the coordination store went away, and came back."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from buttress import events

__all__ = ["FleetStoreDegraded", "FleetStoreRestored", "announce"]


@dataclass(frozen=True, slots=True)
class FleetStoreDegraded(events.Event):
    """A shared object lost its store and runs on local state until it returns."""

    kind: ClassVar[str] = "fleet.degraded"
    level: ClassVar[int] = logging.WARNING

    store: str
    error: str

    def message(self) -> str:
        return f"{self.source!r}: store {self.store} unreachable, local mode ({self.error})"


@dataclass(frozen=True, slots=True)
class FleetStoreRestored(events.Event):
    """A shared object reached its store again and rejoined the fleet."""

    kind: ClassVar[str] = "fleet.restored"
    level: ClassVar[int] = logging.WARNING

    store: str

    def message(self) -> str:
        return f"{self.source!r}: store {self.store} reachable again, rejoined the fleet"


def announce(event: events.Event) -> None:
    """Emit ``event`` if anyone listens."""
    if events.wants(type(event)):
        events.emit(event)
