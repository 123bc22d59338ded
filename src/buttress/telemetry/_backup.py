"""Metric families of the backups (``buttress.backup``) attached to a registry.

The ``BackupPlan`` (or ``BackupManager``) is found by kind (``backup``) and its catalog is read
at scrape time, a few queries whatever the history's length, so every process sharing the
catalog reports the same values. ``name`` is the backup name (redacted). A catalog that
cannot be read leaves its rows out (and is logged).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING, Any

from buttress._redact import redact
from buttress.errors import ButtressError

if TYPE_CHECKING:
    from buttress.telemetry._families import Family, Items, Scrape

__all__ = ["backups"]

logger = logging.getLogger("buttress")


def backups(items: Items, scrape: Scrape) -> list[Family]:
    """The newest completed backup's end, duration and size per name; the newest passed
    drill's recovery time, recovery point and end."""
    from buttress.backup._overview import summarize

    last_success = scrape.family(
        "backup_last_success_timestamp_seconds",
        "gauge",
        "When the newest completed backup of the name finished (Unix time).",
        "name",
    )
    duration = scrape.family(
        "backup_duration_seconds",
        "gauge",
        "How long the newest completed backup of the name took.",
        "name",
    )
    size = scrape.family(
        "backup_size_bytes",
        "gauge",
        "Bytes stored by the newest completed backup of the name (compressed, encrypted).",
        "name",
    )
    recovery = scrape.family(
        "drill_recovery_seconds",
        "gauge",
        "Recovery time (RTO) measured by the newest passed restore drill of the name.",
        "name",
    )
    point = scrape.family(
        "drill_recovery_point_seconds",
        "gauge",
        "Age of the newest restored data (RPO) in the newest passed restore drill of the name.",
        "name",
    )
    drilled = scrape.family(
        "drill_last_success_timestamp_seconds",
        "gauge",
        "When the newest passed restore drill of the name finished (Unix time).",
        "name",
    )
    seen: set[str] = set()
    for _label, item in items:
        manager: Any = getattr(item, "manager", item)
        try:
            summaries = summarize(manager.catalog)
        except (ButtressError, sqlite3.Error, OSError) as exc:
            logger.warning("backups: no metrics from the catalog: %s", exc)
            continue
        for name, summary in summaries.items():
            label = redact(name)
            if label in seen:  # two catalogs with one name: the first is reported
                continue
            seen.add(label)
            key = (label,)
            success = summary.last_success
            if success is not None and success.finished_at is not None:
                last_success.rows.append((key, success.finished_at))
                duration.rows.append((key, success.duration or 0.0))
                size.rows.append((key, success.size))
            drill = summary.last_passed_drill
            if drill is not None:
                drilled.rows.append((key, drill.finished_at))
                if drill.rto_seconds is not None:
                    recovery.rows.append((key, drill.rto_seconds))
                if drill.rpo_seconds is not None:
                    point.rows.append((key, drill.rpo_seconds))
    return [last_success, duration, size, recovery, point, drilled]
