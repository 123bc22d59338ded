"""Retention: keep the last N and the newest backup of each recent day, week, month and year
(grandfather-father-son), never a backup something kept still needs.

``plan_retention`` is pure: it takes catalog records and ``now`` and says what to keep (with
the reasons) and what to delete. Per backup name:

- a running backup is kept, and so is the newest completed one (whatever the policy);
- a completed backup is kept while its ``keep_until`` (``create(retention=...)``) is ahead;
- with a policy: the ``last`` newest completed backups, and for each of the ``daily``
  (``weekly``, ``monthly``, ``yearly``) most recent days (ISO weeks, months, years) that have
  a completed backup, the newest backup of that period (restic's and borg's rule);
- without a policy, a completed backup is deleted only once its ``keep_until`` has passed;
- failed backups are deleted;
- and every backup a kept one builds on (its parent, up to the full) is kept.

Deletions are listed newest first, so that an interrupted prune never leaves an incremental
whose parent is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from buttress._options import integer
from buttress.backup._model import Backup

__all__ = ["RetentionPlan", "RetentionPolicy", "plan_retention"]

_PERIODS: tuple[tuple[str, Callable[[datetime], Hashable]], ...] = (
    ("daily", lambda d: d.date()),
    ("weekly", lambda d: d.isocalendar()[:2]),
    ("monthly", lambda d: (d.year, d.month)),
    ("yearly", lambda d: d.year),
)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How many backups to keep per name: the ``last`` N, and the newest of each of the
    ``daily``, ``weekly``, ``monthly`` and ``yearly`` most recent periods (all default 0).
    Periods are calendar days, ISO weeks, months and years in ``tz`` (default UTC)."""

    last: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    tz: tzinfo = field(default=UTC)

    def __post_init__(self) -> None:
        for name in ("last", "daily", "weekly", "monthly", "yearly"):
            integer(name, getattr(self, name), minimum=0)

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain data."""
        return {
            "last": self.last,
            "daily": self.daily,
            "weekly": self.weekly,
            "monthly": self.monthly,
            "yearly": self.yearly,
            "tz": str(self.tz),
        }


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    """``keep`` maps each kept backup id to why it is kept; ``delete`` lists the rest,
    newest first."""

    keep: dict[str, tuple[str, ...]]
    delete: tuple[str, ...]


def plan_retention(
    backups: Sequence[Backup], policy: RetentionPolicy | None, now: float
) -> RetentionPlan:
    """What to keep and what to delete among ``backups`` at wall-clock time ``now``."""
    reasons: dict[str, list[str]] = {b.id: [] for b in backups}
    by_name: dict[str, list[Backup]] = {}
    for b in backups:
        by_name.setdefault(b.name, []).append(b)
    for group in by_name.values():
        _plan_name(group, policy, now, reasons)
    by_id = {b.id: b for b in backups}
    # Whatever a kept backup builds on is kept too.
    for b in sorted(backups, key=lambda b: (b.started_at, b.id), reverse=True):
        if not reasons[b.id]:
            continue
        parent = b.parent
        child = b.id
        while parent is not None and parent in by_id:
            note = f"needed by {child}"
            if note not in reasons[parent]:
                reasons[parent].append(note)
            child, parent = parent, by_id[parent].parent
    delete = sorted(
        (b for b in backups if not reasons[b.id]), key=lambda b: (b.started_at, b.id), reverse=True
    )
    return RetentionPlan(
        keep={k: tuple(v) for k, v in reasons.items() if v},
        delete=tuple(b.id for b in delete),
    )


def _plan_name(
    group: list[Backup], policy: RetentionPolicy | None, now: float, reasons: dict[str, list[str]]
) -> None:
    completed = sorted(
        (b for b in group if b.status == "completed"),
        key=lambda b: (b.started_at, b.id),
        reverse=True,
    )
    for b in group:
        if b.status == "running":
            reasons[b.id].append("running")
    if completed:
        reasons[completed[0].id].append("newest")
    for b in completed:
        if b.keep_until is not None and b.keep_until > now:
            reasons[b.id].append("keep_until")
        elif policy is None and b.keep_until is None:
            reasons[b.id].append("no policy")
    if policy is None:
        return
    for b in completed[: policy.last]:
        reasons[b.id].append("last")
    for period, bucket in _PERIODS:
        limit: int = getattr(policy, period)
        seen: set[Hashable] = set()
        for b in completed:
            if len(seen) >= limit:
                break
            key = bucket(datetime.fromtimestamp(b.started_at, policy.tz))
            if key not in seen:
                seen.add(key)
                reasons[b.id].append(period)
