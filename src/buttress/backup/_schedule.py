"""What runs on a schedule: backups of configured names and restore drills.

``BackupPlan(manager, backups=(...), drills=(...))`` holds ``ScheduledBackup`` and
``ScheduledDrill`` entries. Each ``every`` seconds is cut into slots aligned on the Unix epoch
plus ``offset`` (``every=86400, offset=7200``: daily at 02:00 UTC). A backup or drill is due
once per slot: when the newest attempt recorded in the catalog started before the current slot
began. The ops server checks every ``check_interval(every)`` seconds (a quarter of ``every``,
at most ``MAX_CHECK``), so work starts at most that long after its slot opens; because the
catalog decides, a restart never postpones a backup (a missed slot runs at the next check) and
processes sharing a catalog (and the scheduler's leader lock) make one backup per slot. A
backup whose newest attempt failed is tried again at the next check; a failed drill waits for
its next slot (it needs a person, and alerts once).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from buttress import _options as opt
from buttress.backup._model import KINDS, Backup, DrillResult, check_name
from buttress.backup._retention import RetentionPolicy
from buttress.errors import BackupError, ConfigError

if TYPE_CHECKING:
    from buttress.backup._manager import BackupManager
    from buttress.registry import Registry

__all__ = [
    "MAX_CHECK",
    "BackupPlan",
    "ScheduledBackup",
    "ScheduledDrill",
    "check_interval",
    "full_due",
    "slot_start",
]

MAX_CHECK = 3600.0
"""The longest wait between two checks of a schedule (seconds)."""


def check_interval(every: float) -> float:
    """How often a schedule of ``every`` seconds is checked: a quarter of it, at most an hour."""
    return min(every / 4, MAX_CHECK)


def slot_start(now: float, every: float, offset: float = 0.0) -> float:
    """The start of the slot holding ``now``: the latest ``offset + k * every`` not after it."""
    return math.floor((now - offset) / every) * every + offset


def _strings(field_name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(field_name, value, "must be a list of non-empty strings")
    items = tuple(value)
    if not all(isinstance(item, str) and item.strip() for item in items):
        raise ConfigError(field_name, value, "must be a list of non-empty strings")
    return items


def _schedule(name: str, every: object, offset: object) -> tuple[float | None, float]:
    check_name("name", name)
    seconds = opt.optional_duration("every", every)
    shift = opt.duration("offset", offset, allow_zero=True)
    if seconds is not None and shift >= seconds:
        raise ConfigError("offset", offset, f"must be less than every ({seconds:g} s)")
    return seconds, shift


@dataclass(frozen=True, slots=True)
class ScheduledBackup:
    """A backup of ``name`` (configured on the manager) every ``every`` seconds (None: never
    on its own, only when asked), slots shifted by ``offset`` seconds from the epoch; of
    ``kind`` ``full``, ``incremental`` or ``differential``, and a full instead whenever the
    newest full started ``full_every`` seconds ago or more. ``keep_for`` protects each backup
    from pruning that long; ``retention`` prunes the name's backups after each backup.
    Durations are seconds or ``timedelta``."""

    name: str
    every: float | timedelta | None = None
    kind: str = "full"
    full_every: float | timedelta | None = None
    offset: float | timedelta = 0.0
    keep_for: float | timedelta | None = None
    retention: RetentionPolicy | None = None

    def __post_init__(self) -> None:
        every, offset = _schedule(self.name, self.every, self.offset)
        object.__setattr__(self, "every", every)
        object.__setattr__(self, "offset", offset)
        if self.kind not in KINDS:
            raise ConfigError("kind", self.kind, "must be full, incremental or differential")
        for name in ("full_every", "keep_for"):
            value = opt.optional_duration(name, getattr(self, name))
            object.__setattr__(self, name, value)
        if self.retention is not None and not isinstance(self.retention, RetentionPolicy):
            raise ConfigError("retention", self.retention, "must be a RetentionPolicy or None")

    def to_dict(self) -> dict[str, Any]:
        """The schedule as plain data."""
        return {
            "name": self.name,
            "every": self.every,
            "offset": self.offset,
            "kind": self.kind,
            "full_every": self.full_every,
            "keep_for": self.keep_for,
            "retention": None if self.retention is None else self.retention.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class ScheduledDrill:
    """A restore drill of ``name`` every ``every`` seconds (None: only when asked), slots
    shifted by ``offset``, with its validation: ``queries`` (each must return a true first
    column), ``files`` (each must exist in the restored tree) and ``freshness_query`` (the
    time of the newest data, for the RPO)."""

    name: str
    every: float | timedelta | None = None
    offset: float | timedelta = 0.0
    queries: Sequence[str] = ()
    files: Sequence[str] = ()
    freshness_query: str | None = None

    def __post_init__(self) -> None:
        every, offset = _schedule(self.name, self.every, self.offset)
        object.__setattr__(self, "every", every)
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "queries", _strings("queries", self.queries))
        object.__setattr__(self, "files", _strings("files", self.files))
        query = self.freshness_query
        if query is not None and (not isinstance(query, str) or not query.strip()):
            raise ConfigError("freshness_query", query, "must be a query or None")

    def to_dict(self) -> dict[str, Any]:
        """The schedule and validation as plain data."""
        return {
            "name": self.name,
            "every": self.every,
            "offset": self.offset,
            "queries": list(self.queries),
            "files": list(self.files),
            "freshness_query": self.freshness_query,
        }


def full_due(latest_full: Backup | None, full_every: float, now: float, slack: float) -> bool:
    """Whether the next backup must be a full: none yet, or the newest full started at least
    ``full_every - slack`` seconds before ``now``."""
    return latest_full is None or now - latest_full.started_at >= full_every - slack


def _due(last_started: float | None, every: float, offset: float, now: float) -> bool:
    return last_started is None or last_started < slot_start(now, every, offset)


def _seconds(value: float | timedelta | None) -> float | None:
    return opt.optional_duration("duration", value, allow_zero=True)


class BackupPlan:
    """The scheduled backups and drills of ``manager``. ``attach(registry)`` makes the ops
    server serve them: ``/admin/reliability/backups``, the scheduler's ``backup:<name>`` and
    ``drill:<name>`` jobs, and the backup metrics."""

    __slots__ = ("backups", "drills", "manager")

    def __init__(
        self,
        manager: BackupManager,
        *,
        backups: Iterable[ScheduledBackup] = (),
        drills: Iterable[ScheduledDrill] = (),
    ) -> None:
        from buttress.backup._manager import BackupManager

        if not isinstance(manager, BackupManager):
            raise ConfigError("manager", manager, "must be a BackupManager")
        self.manager = manager
        self.backups: dict[str, ScheduledBackup] = {}
        self.drills: dict[str, ScheduledDrill] = {}
        for item in backups:
            if not isinstance(item, ScheduledBackup) or item.name in self.backups:
                raise ConfigError("backups", item, "must be ScheduledBackup items, one per name")
            self.backups[item.name] = item
        for drill in drills:
            if not isinstance(drill, ScheduledDrill) or drill.name in self.drills:
                raise ConfigError("drills", drill, "must be ScheduledDrill items, one per name")
            self.drills[drill.name] = drill

    def __repr__(self) -> str:
        return f"BackupPlan(backups={sorted(self.backups)}, drills={sorted(self.drills)})"

    def attach(self, registry: Registry) -> BackupPlan:
        """Register this plan as the registry's ``backup`` (named ``default``); returns it."""
        return registry.attach("backup", self, "default")

    # -- backups --------------------------------------------------------------------------------

    def backup_due(self, name: str, now: float | None = None) -> bool:
        """Whether the scheduled backup ``name`` should run now (see the module docstring)."""
        schedule = self.backups[name]
        every, offset = _seconds(schedule.every), _seconds(schedule.offset) or 0.0
        if every is None:
            return False
        now = self.manager.clock.time() if now is None else now
        last = self.manager.catalog.last(name)
        if last is not None and last.status == "failed":
            return now - last.started_at >= check_interval(every)
        if last is not None and last.status == "running" and now - last.started_at < every:
            return False  # another process is making it (older: it died, the record is stale)
        started = None if last is None or last.status == "running" else last.started_at
        return _due(started, every, offset, now)

    def next_kind(self, name: str, now: float | None = None) -> str:
        """The kind the next backup of ``name`` takes (a full when ``full_every`` says so)."""
        schedule = self.backups[name]
        full_every, every = _seconds(schedule.full_every), _seconds(schedule.every)
        if schedule.kind == "full" or full_every is None:
            return schedule.kind
        now = self.manager.clock.time() if now is None else now
        slack = 0.0 if every is None else check_interval(every)
        latest = self.manager.catalog.latest(name, kinds=("full",))
        return "full" if full_due(latest, full_every, now, slack) else schedule.kind

    def run_backup(self, name: str) -> Backup:
        """Make the next backup of ``name`` now (due or not), then prune with its retention."""
        if name not in self.backups:
            raise BackupError(f"no scheduled backup named {name!r}")
        schedule = self.backups[name]
        keep = _seconds(schedule.keep_for)
        backup = self.manager.create(name, self.next_kind(name), retention=keep)
        if schedule.retention is not None:
            self.manager.prune(schedule.retention, name=name)
        return backup

    # -- drills ---------------------------------------------------------------------------------

    def drill_due(self, name: str, now: float | None = None) -> bool:
        """Whether the scheduled drill ``name`` should run now."""
        schedule = self.drills[name]
        every, offset = _seconds(schedule.every), _seconds(schedule.offset) or 0.0
        if every is None:
            return False
        now = self.manager.clock.time() if now is None else now
        history = self.manager.catalog.drills(name, limit=1)
        started = history[0].started_at if history else None
        return _due(started, every, offset, now)

    def run_drill(self, name: str) -> DrillResult:
        """Drill ``name`` now with its configured validation (none if it has no schedule)."""
        drill = self.drills.get(name) or ScheduledDrill(name)
        return self.manager.drill(
            name,
            queries=drill.queries,
            files=drill.files,
            freshness_query=drill.freshness_query,
        )
