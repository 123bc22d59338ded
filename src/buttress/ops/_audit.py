"""The audit log: every mutation made through the admin API, appended to the state store."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._redact import redact
from buttress.health._report import rfc3339
from buttress.ops._state import StateStore

__all__ = ["AuditEntry", "AuditLog"]

logger = logging.getLogger("buttress.ops")

_COMPONENT = "buttress.audit"
_STEPS = (
    """
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        before TEXT,
        after TEXT,
        client TEXT,
        reason TEXT
    );
    """,
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One mutation: who (``actor``, the token's name), what (``action`` on ``target``), the state
    ``before`` and ``after``, when (``time``, wall clock), from where (``client``) and why."""

    id: int
    time: float
    actor: str
    action: str
    target: str
    before: Any
    after: Any
    client: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The entry as plain data, ``time`` in RFC 3339."""
        return {
            "id": self.id,
            "time": rfc3339(self.time),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "before": self.before,
            "after": self.after,
            "client": self.client,
            "reason": self.reason,
        }


class AuditLog:
    """Appends and pages audit entries in ``store`` (its table is created on first use)."""

    def __init__(self, store: StateStore, *, clock: Clock | None = None) -> None:
        self.store = store
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        store.register(_COMPONENT, _STEPS)

    def append(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        before: Any = None,
        after: Any = None,
        client: str | None = None,
        reason: str | None = None,
    ) -> AuditEntry:
        """Record a mutation and return it; ``reason`` is redacted (no pasted secret is kept)."""
        reason = redact(reason) if reason else None
        now = self._clock.time()
        row_id = self.store.execute(
            "INSERT INTO audit_log (time, actor, action, target, before, after, client, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (now, actor, action, target, _dump(before), _dump(after), client, reason),
        )
        entry = AuditEntry(row_id, now, actor, action, target, before, after, client, reason)
        logger.info(
            "audit: %s %s %s from %s",
            actor,
            action,
            target,
            client or "unknown",
            extra={"buttress_audit": entry.id},
        )
        return entry

    def page(self, *, limit: int = 50, before: int | None = None) -> list[AuditEntry]:
        """The newest ``limit`` entries (older than entry id ``before`` if given), newest first."""
        if before is None:
            rows = self.store.query(
                "SELECT id, time, actor, action, target, before, after, client, reason "
                "FROM audit_log ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        else:
            rows = self.store.query(
                "SELECT id, time, actor, action, target, before, after, client, reason "
                "FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?",
                (before, limit),
            )
        return [
            AuditEntry(
                row[0], row[1], row[2], row[3], row[4], _load(row[5]), _load(row[6]), *row[7:]
            )
            for row in rows
        ]


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)
