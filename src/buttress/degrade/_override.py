"""``Override``: a level set by hand, with who, why and until when; stored as JSON."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from buttress.degrade._levels import DegradationLevel
from buttress.health._report import rfc3339

if TYPE_CHECKING:
    from buttress.stores import KeyValueStore

__all__ = ["Override", "OverrideStore"]

logger = logging.getLogger("buttress")


@dataclass(frozen=True, slots=True)
class Override:
    """A manual level: ``level``, ``reason``, ``actor``, when it was set (``set_at``, wall-clock
    seconds) and when it ends (``expires_at``, wall clock; None: until cleared)."""

    level: DegradationLevel
    reason: str
    actor: str
    set_at: float
    expires_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The override as plain data, times in RFC 3339."""
        return {
            "level": self.level.label,
            "reason": self.reason,
            "actor": self.actor,
            "set_at": rfc3339(self.set_at),
            "expires_at": None if self.expires_at is None else rfc3339(self.expires_at),
        }

    def dumps(self) -> bytes:
        """The override as JSON bytes, for a store."""
        data = {
            "level": self.level.label,
            "reason": self.reason,
            "actor": self.actor,
            "set_at": self.set_at,
            "expires_at": self.expires_at,
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> Override:
        """An override read back from ``dumps``; ValueError if it is not one."""
        try:
            data = json.loads(raw)
            expires = data["expires_at"]
            return cls(
                DegradationLevel.from_name(data["level"]),
                str(data["reason"]),
                str(data["actor"]),
                float(data["set_at"]),
                None if expires is None else float(expires),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a stored degradation override: {exc}") from None


class OverrideStore:
    """A manager's override in a ``KeyValueStore`` (key ``degradation:<name>:override``), kept
    until it expires. A store that fails is logged, never raised: degradation control must keep
    working while the store is down."""

    __slots__ = ("key", "name", "store")

    def __init__(self, store: KeyValueStore, name: str) -> None:
        self.store = store
        self.name = name
        self.key = f"degradation:{name}:override"

    def load(self) -> tuple[bool, Override | None]:
        """``(True, the stored override or None)``, or ``(False, None)`` if it cannot be read."""
        try:
            raw = self.store.get(self.key)
            return True, None if raw is None else Override.loads(raw)
        except Exception as exc:
            logger.warning("degradation %r: cannot read the stored override: %s", self.name, exc)
            return False, None

    def save(self, override: Override | None) -> None:
        """Store ``override`` until it expires, or delete the stored one (None)."""
        try:
            if override is None:
                self.store.delete(self.key)
                return
            expires = override.expires_at
            ttl = None if expires is None else max(expires - override.set_at, 0.001)
            self.store.set(self.key, override.dumps(), ttl=ttl)
        except Exception as exc:
            logger.warning("degradation %r: the override was not stored: %s", self.name, exc)
