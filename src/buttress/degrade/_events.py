"""``DegradationChanged``: the event of every change of a manager's level.

It is a ``HealthAlert`` (``old`` and ``new`` are level names, ``output`` the reason), so the
health alert sinks (``LogSink``, ``WebhookSink``, ``CallableSink``) deliver it unchanged.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from buttress.events import Event, HealthAlert, remove_listener

__all__ = ["DegradationChanged", "WakeListener"]


@dataclass(frozen=True, slots=True)
class DegradationChanged(HealthAlert):
    """Manager ``source`` went from level ``old`` to ``new``; ``output`` is the reason, ``actor``
    who set or cleared a manual override (None for a computed change), ``features_off`` the
    features that are off at the new level."""

    kind: ClassVar[str] = "degradation.changed"
    level: ClassVar[int] = logging.WARNING

    actor: str | None = None
    features_off: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        """Why the level changed (the ``output`` of the alert)."""
        return self.output

    def message(self) -> str:
        by = f" by {self.actor}" if self.actor else ""
        off = f"; off: {', '.join(self.features_off)}" if self.features_off else ""
        return f"degradation {self.source!r}: {self.old} -> {self.new}{by} ({self.output}){off}"

    def to_dict(self) -> dict[str, Any]:
        """The event as plain data, with ``reason`` beside ``output``."""
        data = HealthAlert.to_dict(self)
        data["reason"] = self.output
        data["features_off"] = list(self.features_off)
        return data


class Wake(Protocol):
    """What ``WakeListener`` calls: an object that evaluates again at its next read."""

    def wake(self) -> None:
        """Evaluate at the next read."""


class WakeListener:
    """An event listener calling ``target.wake()`` when a breaker or a health check changed, so
    that a manager's level rises at once. It holds the target weakly and removes itself once the
    target is gone."""

    __slots__ = ("_target",)

    kinds: ClassVar[frozenset[str]] = frozenset({"breaker.state_changed", "health.alert"})

    def __init__(self, target: Wake) -> None:
        self._target = weakref.ref(target)

    def __call__(self, event: Event) -> None:
        target = self._target()
        if target is None:
            remove_listener(self)
        else:
            target.wake()
