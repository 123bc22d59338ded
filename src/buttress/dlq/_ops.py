"""What the ops server needs of a dead letter queue, as plain logic: health grading by
thresholds, the failure timeline of the dashboard's chart, and the scheduled jobs' settings.

``HealthThresholds`` grades ``Stats`` into an IETF ``application/health+json`` document
(``health_document``): a metric above its ``warn`` threshold warns, above its ``fail``
threshold fails (None: never). ``failure_timeline`` counts failed attempts (each record's
history) by time bucket, classification and error type. ``Operations`` says how often the ops
server processes and cleans up a queue; attach one to a ``Registry`` beside the queue (kind
``dlq_operations``, same name) to change the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from buttress import _options as opt
from buttress.dlq._records import DeadLetter, Stats, Status
from buttress.errors import ConfigError

__all__ = [
    "HEALTH_METRICS",
    "HealthThresholds",
    "Operations",
    "failure_timeline",
    "health_document",
    "unavailable_document",
]

HEALTH_METRICS = ("parked", "pending", "oldest_pending_age", "arrival_rate")
"""The graded metrics, in the order of the health document."""
_UNITS = {
    "parked": "messages",
    "pending": "messages",
    "oldest_pending_age": "s",
    "arrival_rate": "messages/s",
}
_RANK = {"pass": 0, "warn": 1, "fail": 2}


def _threshold(name: str, value: object) -> float | None:
    if value is None:
        return None
    return opt.number(name, value, minimum=0)


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    """When ``/health/dlq`` warns and fails: each metric warns above ``<metric>_warn`` and
    fails above ``<metric>_fail`` (None: never). Defaults: any parked record warns; the oldest
    pending record warns after an hour and fails after a day; pending count and arrival rate
    are shown but not graded."""

    parked_warn: float | None = 0
    parked_fail: float | None = None
    pending_warn: float | None = None
    pending_fail: float | None = None
    oldest_pending_age_warn: float | None = 3600.0
    oldest_pending_age_fail: float | None = 86400.0
    arrival_rate_warn: float | None = None
    arrival_rate_fail: float | None = None

    def __post_init__(self) -> None:
        for metric in HEALTH_METRICS:
            warn = _threshold(f"{metric}_warn", getattr(self, f"{metric}_warn"))
            fail = _threshold(f"{metric}_fail", getattr(self, f"{metric}_fail"))
            if warn is not None and fail is not None and fail < warn:
                raise ConfigError(f"{metric}_fail", fail, f"must be >= {metric}_warn ({warn:g})")
            object.__setattr__(self, f"{metric}_warn", warn)
            object.__setattr__(self, f"{metric}_fail", fail)

    def grade(self, metric: str, value: float | None) -> str:
        """``pass``, ``warn`` or ``fail`` for ``value`` of ``metric`` (None passes)."""
        if value is None:
            return "pass"
        fail = getattr(self, f"{metric}_fail")
        if fail is not None and value > fail:
            return "fail"
        warn = getattr(self, f"{metric}_warn")
        if warn is not None and value > warn:
            return "warn"
        return "pass"

    def to_dict(self) -> dict[str, float | None]:
        """The thresholds as plain data."""
        return {
            f"{metric}_{level}": getattr(self, f"{metric}_{level}")
            for metric in HEALTH_METRICS
            for level in ("warn", "fail")
        }


@dataclass(frozen=True, slots=True)
class Operations:
    """How the ops server runs a dead letter queue: ``health`` thresholds, a processing run
    (due messages through the handlers, then the alert check) every ``process_interval``
    seconds (default 5 minutes) and a cleanup every ``cleanup_interval`` (default a day);
    None turns a job off."""

    health: HealthThresholds = field(default_factory=HealthThresholds)
    process_interval: float | None = 300.0
    cleanup_interval: float | None = 86400.0

    def __post_init__(self) -> None:
        if not isinstance(self.health, HealthThresholds):
            raise ConfigError("health", self.health, "must be a HealthThresholds")
        for name in ("process_interval", "cleanup_interval"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, opt.duration(name, value))


def _values(stats: Stats) -> dict[str, float | None]:
    return {
        "parked": stats.parked,
        "pending": stats.by_status.get(Status.PENDING.value, 0),
        "oldest_pending_age": stats.oldest_pending_age,
        "arrival_rate": stats.arrival_rate,
    }


def _rfc3339(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def health_document(
    name: str, stats: Stats, thresholds: HealthThresholds
) -> tuple[dict[str, Any], int]:
    """The ``application/health+json`` document of ``stats`` and its HTTP status (200 for
    pass and warn, 503 for fail): one check per metric (``dlq:parked``, ``dlq:pending``,
    ``dlq:oldest_pending_age``, ``dlq:arrival_rate``), the worst status overall."""
    values = _values(stats)
    when = _rfc3339(stats.time)
    checks: dict[str, list[dict[str, Any]]] = {}
    worst, notes = "pass", []
    for metric in HEALTH_METRICS:
        value = values[metric]
        status = thresholds.grade(metric, value)
        if _RANK[status] > _RANK[worst]:
            worst = status
        if status != "pass":
            notes.append(f"{metric} {value:g} ({status})")
        item: dict[str, Any] = {
            "componentId": name,
            "componentType": "component",
            "observedValue": round(value, 3) if isinstance(value, float) else value,
            "observedUnit": _UNITS[metric],
            "status": status,
            "time": when,
        }
        checks[f"dlq:{metric}"] = [item]
    doc: dict[str, Any] = {
        "status": worst,
        "description": f"dead letter queue {name!r}",
        "checks": checks,
    }
    if notes:
        doc["output"] = "; ".join(notes)
    return doc, 503 if worst == "fail" else 200


def unavailable_document(name: str, now: float) -> dict[str, Any]:
    """The health document when the queue's store cannot be read (status ``fail``)."""
    return {
        "status": "fail",
        "description": f"dead letter queue {name!r}",
        "output": "the dead letter store is unreachable",
        "checks": {
            "dlq:store": [
                {
                    "componentId": name,
                    "componentType": "datastore",
                    "status": "fail",
                    "time": _rfc3339(now),
                    "output": "unreachable",
                }
            ]
        },
    }


def failure_timeline(
    letters: Iterable[DeadLetter],
    *,
    since: float,
    until: float,
    bucket: float,
) -> dict[str, Any]:
    """Failed attempts of ``letters`` (their histories, the original failure included) with
    ``since <= at < until``, counted per ``bucket`` seconds (bucket starts are multiples of
    ``bucket``; empty buckets are listed too) by classification and by error type."""
    if not (math.isfinite(since) and math.isfinite(until)) or until <= since:
        raise ConfigError("until", until, f"must be a time after since ({since!r})")
    if not math.isfinite(bucket) or bucket <= 0:
        raise ConfigError("bucket", bucket, "must be a positive number of seconds")
    first = math.floor(since / bucket) * bucket
    count = math.ceil((until - first) / bucket)
    rows: list[dict[str, Any]] = [
        {"start": first + i * bucket, "total": 0, "by_classification": {}, "by_error_type": {}}
        for i in range(count)
    ]
    kinds: set[str] = set()
    types: set[str] = set()
    for letter in letters:
        for attempt in letter.history:
            if not since <= attempt.at < until:
                continue
            row = rows[int((attempt.at - first) // bucket)]
            kind = attempt.classification.value
            row["total"] += 1
            _bump(row["by_classification"], kind)
            _bump(row["by_error_type"], attempt.error_type)
            kinds.add(kind)
            types.add(attempt.error_type)
    return {
        "since": since,
        "until": until,
        "bucket": bucket,
        "buckets": rows,
        "classifications": sorted(kinds),
        "error_types": sorted(types),
    }


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1
