"""Degradation levels, ordered from healthy to the manual maintenance mode."""

from __future__ import annotations

import enum
from typing import Protocol, runtime_checkable

from buttress.errors import ConfigError

__all__ = ["DegradationLevel", "LevelSource"]


class DegradationLevel(enum.IntEnum):
    """How much a service has degraded; higher is worse, ``MAINTENANCE`` is above everything."""

    NORMAL = 0
    MINOR = 1
    MODERATE = 2
    SEVERE = 3
    CRITICAL = 4
    MAINTENANCE = 5

    @classmethod
    def from_name(cls, name: str | DegradationLevel) -> DegradationLevel:
        """The level called ``name`` (any case, e.g. ``"moderate"``); ConfigError otherwise."""
        if isinstance(name, DegradationLevel):
            return name
        if isinstance(name, str):
            member = cls.__members__.get(name.strip().upper())
            if member is not None:
                return member
        names = ", ".join(m.name.lower() for m in cls)
        raise ConfigError("level", name, f"must be one of {names}")

    @property
    def label(self) -> str:
        """The lower-case name, as used in configuration, URLs and metrics."""
        return self.name.lower()


@runtime_checkable
class LevelSource(Protocol):
    """Anything that reports a current degradation level (a ``DegradationManager``)."""

    @property
    def level(self) -> DegradationLevel:
        """The current level."""
        ...
