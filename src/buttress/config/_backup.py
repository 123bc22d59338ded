"""``[backup]``: the backup store, its key, scheduled backups and restore drills.

.. code-block:: toml

    [backup]
    store = "/var/backups/buttress"    # catalog.db and artifacts/, as `buttress backup --store`
    # catalog = ".../catalog.db"       # or each part on its own
    # destination = ".../artifacts"
    key_file = "/etc/buttress/backup.key"   # or key_env = "BUTTRESS_BACKUP_KEY"; never the key
    compression = "zstd"                    # zstd, gzip or none

    [backup.jobs.site]                 # one table per backup name
    strategy = "files"                 # files, sqlite, postgres or pitr
    source = "/srv/site"               # a directory, a SQLite file or a DSN (no password)
    exclude = ["*.tmp"]                # files: include / exclude globs
    type = "incremental"               # full (default), incremental or differential
    every = 3600                       # seconds (absent: never on its own)
    offset = 0                         # slots start at epoch + offset (UTC)
    full_every = 604800                # a full when the newest is this old
    keep_days = 0                      # protect each backup from pruning this long
    retention = { last = 7, daily = 14, weekly = 8, monthly = 12 }   # prune after each

    [backup.drills.site]               # restore drills, one table per name
    every = 604800
    files = ["index.html"]             # must exist in the restored tree
    queries = []                       # databases: each must return true
    freshness_query = ""               # the time of the newest data, for the RPO

PostgreSQL sources take ``password_env`` (the variable holding the password), ``restore_jobs``
(``pg_restore -j``), and for ``pitr`` the WAL ``archive`` and ``wal_command``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from buttress.config._errors import Problems
from buttress.config._schema import Option
from buttress.errors import ConfigError

if TYPE_CHECKING:  # the backup modules load only with a [backup] table
    from buttress._clock import Clock
    from buttress.backup import BackupPlan, ScheduledBackup, ScheduledDrill, Source
    from buttress.registry import Registry

__all__ = ["BACKUP_KEYS", "REFERENCE_OPTIONS", "BackupSettings", "build_backup", "render_backup"]

BACKUP_KEYS: Final = frozenset(
    {"store", "catalog", "destination", "key_file", "key_env", "compression", "jobs", "drills"}
)
STRATEGIES: Final = ("files", "sqlite", "postgres", "pitr")
JOB_KEYS: Final = frozenset(
    {
        "strategy",
        "source",
        "include",
        "exclude",
        "type",
        "every",
        "offset",
        "full_every",
        "keep_days",
        "retention",
        "password_env",
        "restore_jobs",
        "archive",
        "wal_command",
    }
)
DRILL_KEYS: Final = frozenset({"every", "offset", "queries", "files", "freshness_query"})
RETENTION_KEYS: Final = frozenset({"last", "daily", "weekly", "monthly", "yearly"})
DAY = 86400.0
REFERENCE_OPTIONS: Final = {
    name: Option(name, "any")
    for name in ("store", "catalog", "destination", "key_file", "key_env", "compression")
}
"""The scalar keys of ``[backup]``, for the configuration reference."""


@dataclass(frozen=True, slots=True)
class BackupJobSettings:
    """One ``[backup.jobs.<name>]``: the source (built and checked) and its schedule."""

    source: Source
    schedule: ScheduledBackup
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class BackupSettings:
    """Backups (``[backup]``): the catalog file and the destination directory, the key's
    source (``key_file`` or ``key_env``: where the key is, never the key), ``compression``,
    the scheduled backups (``jobs``) and the drills."""

    catalog: str
    destination: str
    key_file: str | None = None
    key_env: str | None = None
    compression: str = "zstd"
    jobs: tuple[BackupJobSettings, ...] = ()
    drills: tuple[ScheduledDrill, ...] = ()

    def __post_init__(self) -> None:
        for name in ("catalog", "destination"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigError(name, value, "must be a path")
        for name in ("key_file", "key_env"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(name, value, "must be a non-empty string")
        if self.key_file is not None and self.key_env is not None:
            raise ConfigError("key_env", self.key_env, "must not be given with key_file")
        from buttress.backup._stream import check_compression

        check_compression(self.compression)

    def open(self, *, registry: Registry | None = None, clock: Clock | None = None) -> BackupPlan:
        """The ``BackupPlan`` these settings describe: a ``BackupManager`` on the catalog and
        destination with every job's source configured (encrypted with the key, read now:
        ``ConfigError`` if it cannot be), and the schedules. With a ``registry`` the plan is
        attached there (kind ``backup``), where the ops server finds it."""
        from buttress.backup import BackupManager, BackupPlan, EncryptionKey

        key = None
        if self.key_file is not None:
            key = EncryptionKey.from_file(self.key_file)
        elif self.key_env is not None:
            key = EncryptionKey.from_env(self.key_env)
        manager = BackupManager(self.catalog, self.destination, clock=clock)
        if key is not None:
            manager.add_key(key)
        for job in self.jobs:
            manager.configure(job.schedule.name, job.source, key=key, compression=self.compression)
        plan = BackupPlan(manager, backups=[j.schedule for j in self.jobs], drills=self.drills)
        if registry is not None:
            plan.attach(registry)
        return plan


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _source(name: str, table: dict[str, Any], settings: dict[str, Any]) -> Source:
    from buttress.backup import Files, PostgresDump, PostgresPITR, SQLiteDatabase

    strategy, source = table.get("strategy"), table.get("source")
    if strategy not in STRATEGIES:
        raise ConfigError("strategy", strategy, f"must be one of {', '.join(STRATEGIES)}")
    if not isinstance(source, str) or not source:
        raise ConfigError("source", source, "must be a path or a DSN")
    allowed = {
        "files": {"include", "exclude"},
        "sqlite": set(),
        "postgres": {"password_env", "restore_jobs"},
        "pitr": {"password_env", "archive", "wal_command"},
    }[strategy]
    for key in ("include", "exclude", "password_env", "restore_jobs", "archive", "wal_command"):
        if key in table and key not in allowed:
            raise ConfigError(key, table[key], f"does not apply to {strategy} backups")
    if strategy == "files":
        return Files(source, include=table.get("include", ()), exclude=table.get("exclude", ()))
    if strategy == "sqlite":
        return SQLiteDatabase(source)
    if strategy == "postgres":
        return PostgresDump(
            source, jobs=table.get("restore_jobs"), password_env=table.get("password_env")
        )
    if "archive" not in table:
        raise ConfigError("archive", None, "must name the WAL archive directory (pitr)")
    return PostgresPITR(
        source,
        archive=table["archive"],
        wal_command=table.get("wal_command", "buttress"),
        wal_key_file=settings.get("key_file"),
        wal_key_env=settings.get("key_env"),
        password_env=table.get("password_env"),
    )


def _job(
    name: str, table: object, settings: dict[str, Any], problems: Problems
) -> BackupJobSettings | None:
    from buttress.backup import RetentionPolicy, ScheduledBackup

    where = ("backup", "jobs", name)
    if not isinstance(table, dict):
        problems.add(where, "must be a table")
        return None
    for key in table:
        if key not in JOB_KEYS:
            problems.unknown((*where, key), JOB_KEYS)
    retention = table.get("retention")
    policy = None
    if retention is not None:
        if not isinstance(retention, dict):
            problems.add((*where, "retention"), "must be a table: { last = 7, daily = 14 }")
            return None
        for key in retention:
            if key not in RETENTION_KEYS:
                problems.unknown((*where, "retention", key), RETENTION_KEYS)
        try:
            policy = RetentionPolicy(**{k: v for k, v in retention.items() if k in RETENTION_KEYS})
        except ConfigError as exc:
            problems.config_error((*where, "retention", exc.field), exc)
    for key in ("include", "exclude"):
        if key in table and not _strings(table[key]):
            problems.add((*where, key), "must be a list of glob patterns")
    if problems.failed_under(where):
        return None
    try:
        source = _source(name, table, settings)
        keep = table.get("keep_days")
        schedule = ScheduledBackup(
            name,
            every=table.get("every"),
            kind=table.get("type", "full"),
            full_every=table.get("full_every"),
            offset=table.get("offset", 0.0),
            keep_for=None if keep is None or keep == 0 else _days(keep),
            retention=policy,
        )
    except ConfigError as exc:
        field_name = {"kind": "type", "keep_for": "keep_days"}.get(exc.field, exc.field)
        problems.config_error((*where, field_name), exc)
        return None
    if schedule.kind != "full" and not source.incremental:
        problems.add((*where, "type"), f"must be full: {source.strategy} backups are full")
        return None
    return BackupJobSettings(source, schedule, dict(table))


def _days(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError("keep_for", value, "must be a number of days >= 0")
    return float(value) * DAY


def _drill(name: str, table: object, problems: Problems) -> ScheduledDrill | None:
    from buttress.backup import ScheduledDrill

    where = ("backup", "drills", name)
    if not isinstance(table, dict):
        problems.add(where, "must be a table")
        return None
    for key in table:
        if key not in DRILL_KEYS:
            problems.unknown((*where, key), DRILL_KEYS)
    query = table.get("freshness_query") or None
    try:
        return ScheduledDrill(
            name,
            every=table.get("every"),
            offset=table.get("offset", 0.0),
            queries=table.get("queries", ()),
            files=table.get("files", ()),
            freshness_query=query,
        )
    except ConfigError as exc:
        problems.config_error((*where, exc.field), exc)
        return None


def _tables(key: str, value: object, problems: Problems) -> list[tuple[str, object]]:
    if not isinstance(value, dict):
        problems.add(("backup", key), f"must be a table of [backup.{key}.<name>] tables")
        return []
    return list(value.items())


def build_backup(
    table: object, problems: Problems, state_dir: str | Path = ".buttress"
) -> BackupSettings | None:
    """``[backup]`` as ``BackupSettings`` (None without the table, or after recording
    problems)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        problems.add(("backup",), "must be a table")
        return None
    for key in table:
        if key not in BACKUP_KEYS:
            hint = " (name the key's file or variable: key_file, key_env)" if key == "key" else ""
            if hint:
                problems.add(("backup", key), "must not hold the key itself" + hint)
            else:
                problems.unknown(("backup", key), BACKUP_KEYS)
    store = table.get("store")
    if store is not None and (not isinstance(store, str) or not store):
        problems.add(("backup", "store"), "must be a directory path")
        store = None
    catalog = table.get("catalog") or (None if store is None else str(Path(store, "catalog.db")))
    destination = table.get("destination") or (
        None if store is None else str(Path(store, "artifacts"))
    )
    if destination is None:
        problems.add(("backup", "destination"), "is needed (or store)")
    jobs: list[BackupJobSettings] = []
    for name, entry in _tables("jobs", table.get("jobs", {}), problems):
        job = _job(name, entry, table, problems)
        if job is not None:
            jobs.append(job)
    drills: list[ScheduledDrill] = []
    for name, entry in _tables("drills", table.get("drills", {}), problems):
        drill = _drill(name, entry, problems)
        if drill is not None:
            drills.append(drill)
    if problems.failed_under(("backup",)) or destination is None:
        return None
    try:
        return BackupSettings(
            catalog=catalog or str(Path(state_dir, "backup-catalog.db")),
            destination=destination,
            key_file=table.get("key_file"),
            key_env=table.get("key_env"),
            compression=table.get("compression", "zstd"),
            jobs=tuple(jobs),
            drills=tuple(drills),
        )
    except ConfigError as exc:
        problems.config_error(("backup", exc.field), exc)
    return None


def render_backup(settings: BackupSettings) -> dict[str, Any]:
    """``[backup]`` as plain TOML-ready data (what ``buttress config show`` prints)."""
    data: dict[str, Any] = {
        "catalog": settings.catalog,
        "destination": settings.destination,
        "compression": settings.compression,
    }
    for name in ("key_file", "key_env"):
        if getattr(settings, name) is not None:
            data[name] = getattr(settings, name)
    data["jobs"] = {job.schedule.name: job.raw for job in settings.jobs}
    data["drills"] = {
        drill.name: {k: v for k, v in drill.to_dict().items() if k != "name" and v is not None}
        for drill in settings.drills
    }
    return data
