"""Backups that are proven to restore: files, SQLite and PostgreSQL (dump and point-in-time
recovery), with checksums, encryption, retention, verification and timed restore drills.

>>> import tempfile, pathlib
>>> from buttress.backup import BackupManager, Files
>>> work = pathlib.Path(tempfile.mkdtemp())
>>> (work / "site").mkdir(); _ = (work / "site" / "index.html").write_text("hello")
>>> manager = BackupManager(work / "catalog.db", work / "artifacts")
>>> manager.configure("site", Files(work / "site"))
>>> backup = manager.create("site", "full")
>>> backup.status, backup.kind, [a.name for a in backup.artifacts]
('completed', 'full', ['data.tar', 'manifest.jsonl'])
>>> result = manager.restore(backup.id, work / "restored")
>>> (work / "restored" / "index.html").read_text()
'hello'
>>> import shutil; shutil.rmtree(work)

Sources: ``Files`` (full, incremental, differential), ``SQLiteDatabase`` (online backup API),
``PostgresDump`` (``pg_dump -Fc`` / ``pg_restore -j``) and ``PostgresPITR`` (base backups and
the ``WalArchive`` behind ``buttress wal push|fetch``). ``EncryptionKey`` encrypts artifacts
(AES-256-GCM in chunks); ``RetentionPolicy`` drives ``prune``. zstd and encryption need the
``backup`` extra; gzip and no compression need nothing beyond the standard library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from buttress.backup._catalog import Catalog, SourceRecord
    from buttress.backup._cluster import PostgresCluster
    from buttress.backup._crypto import EncryptionKey
    from buttress.backup._destination import Destination, LocalDestination
    from buttress.backup._events import BackupCompleted, BackupFailed, DrillCompleted, DrillFailed
    from buttress.backup._files import Files
    from buttress.backup._manager import BackupManager
    from buttress.backup._model import (
        Artifact,
        Backup,
        CheckResult,
        DrillResult,
        PruneResult,
        RestoreResult,
        VerifyResult,
    )
    from buttress.backup._pitr import PostgresPITR
    from buttress.backup._postgres import PostgresDump
    from buttress.backup._retention import RetentionPlan, RetentionPolicy, plan_retention
    from buttress.backup._schedule import BackupPlan, ScheduledBackup, ScheduledDrill
    from buttress.backup._source import BackupJob, RestoreJob, Source
    from buttress.backup._sqlite import SQLiteDatabase
    from buttress.backup._wal import WalArchive

# Imported on first use, so that ``buttress wal push`` (run by PostgreSQL for every WAL
# segment) loads only the modules it needs.
_MODULES = {
    "Catalog": "_catalog",
    "SourceRecord": "_catalog",
    "PostgresCluster": "_cluster",
    "EncryptionKey": "_crypto",
    "Destination": "_destination",
    "LocalDestination": "_destination",
    "BackupCompleted": "_events",
    "BackupFailed": "_events",
    "DrillCompleted": "_events",
    "DrillFailed": "_events",
    "Files": "_files",
    "BackupManager": "_manager",
    "Artifact": "_model",
    "Backup": "_model",
    "CheckResult": "_model",
    "DrillResult": "_model",
    "PruneResult": "_model",
    "RestoreResult": "_model",
    "VerifyResult": "_model",
    "PostgresPITR": "_pitr",
    "PostgresDump": "_postgres",
    "RetentionPlan": "_retention",
    "RetentionPolicy": "_retention",
    "plan_retention": "_retention",
    "BackupPlan": "_schedule",
    "ScheduledBackup": "_schedule",
    "ScheduledDrill": "_schedule",
    "BackupJob": "_source",
    "RestoreJob": "_source",
    "Source": "_source",
    "SQLiteDatabase": "_sqlite",
    "WalArchive": "_wal",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"buttress.backup.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "Artifact",
    "Backup",
    "BackupCompleted",
    "BackupFailed",
    "BackupJob",
    "BackupManager",
    "BackupPlan",
    "Catalog",
    "CheckResult",
    "Destination",
    "DrillCompleted",
    "DrillFailed",
    "DrillResult",
    "EncryptionKey",
    "Files",
    "LocalDestination",
    "PostgresCluster",
    "PostgresDump",
    "PostgresPITR",
    "PruneResult",
    "RestoreJob",
    "RestoreResult",
    "RetentionPlan",
    "RetentionPolicy",
    "SQLiteDatabase",
    "ScheduledBackup",
    "ScheduledDrill",
    "Source",
    "SourceRecord",
    "VerifyResult",
    "WalArchive",
    "plan_retention",
]
