"""Events of feature flags: a change was made, a flag switched itself off or back on."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from buttress import events

__all__ = ["FlagChanged", "FlagSuspended", "announce"]


@dataclass(frozen=True, slots=True)
class FlagChanged(events.Event):
    """A flag was created, changed or deleted through this process (``source``: the flag)."""

    kind: ClassVar[str] = "flag.changed"
    level: ClassVar[int] = logging.INFO

    action: str
    actor: str
    reason: str | None = None

    def message(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"flag {self.source!r}: {self.action} by {self.actor}{why}"


@dataclass(frozen=True, slots=True)
class FlagSuspended(events.Event):
    """A flag switched off on its own (``suspended``) or came back; ``cause`` says why."""

    kind: ClassVar[str] = "flag.suspended"
    level: ClassVar[int] = logging.WARNING

    suspended: bool
    cause: str

    def message(self) -> str:
        if self.suspended:
            return f"flag {self.source!r} switched off on its own: {self.cause}"
        return f"flag {self.source!r} is back on: {self.cause}"


def announce(event: events.Event) -> None:
    """Emit ``event`` if anyone listens."""
    if events.wants(type(event)):
        events.emit(event)
