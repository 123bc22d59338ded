"""``buttress backup ...`` (and ``register``, which also adds ``buttress wal push|fetch``).

Every backup command works on a store: ``--store DIR`` (or ``$BUTTRESS_BACKUP_STORE``, default
``./buttress-backups``) holds ``catalog.db`` and ``artifacts/``; ``--catalog`` puts the
catalog elsewhere. ``create`` configures the name's source the first time (``--files``,
``--sqlite``, ``--postgres``, ``--pitr``); later runs reuse it. ``--json`` prints results as
JSON for automation. Exit status: 0 ok, 1 a backup, verification or drill failed, 2 bad usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from buttress.cli import _backup_render as render
from buttress.cli import _render
from buttress.cli._backup_options import (
    DEFAULT_STORE,
    CatalogOption,
    Compression,
    JsonOption,
    KeyEnvOption,
    KeyFileOption,
    Kind,
    StoreOption,
    build_source,
    errors,
    load_key,
    open_manager,
)
from buttress.cli._backup_wal import wal_app

__all__ = ["backup_app", "register", "wal_app"]

backup_app = typer.Typer(
    help="Backups that are proven to restore: create, list, restore, verify, drill, prune.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add ``backup`` and ``wal`` to the ``buttress`` application."""
    app.add_typer(backup_app, name="backup")
    app.add_typer(wal_app, name="wal")


@backup_app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="backup name (what is backed up)")],
    kind: Annotated[
        Kind, typer.Option("--type", help="full, incremental or differential")
    ] = Kind.full,
    retention: Annotated[
        float | None, typer.Option(min=0, help="keep this backup for at least DAYS days")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="a tag (repeatable)")] = None,
    files: Annotated[Path | None, typer.Option(help="source: a directory tree")] = None,
    sqlite: Annotated[Path | None, typer.Option(help="source: a SQLite database file")] = None,
    postgres: Annotated[str | None, typer.Option(help="source: pg_dump of this DSN")] = None,
    pitr: Annotated[str | None, typer.Option(help="source: base backups of this DSN")] = None,
    archive: Annotated[Path | None, typer.Option(help="WAL archive directory (--pitr)")] = None,
    wal_command: Annotated[
        str, typer.Option(help="how PostgreSQL runs buttress (--pitr restore_command)")
    ] = "buttress",
    include: Annotated[list[str] | None, typer.Option(help="glob to include (repeatable)")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="glob to exclude (repeatable)")] = None,
    compression: Annotated[Compression, typer.Option(help="zstd, gzip or none")] = Compression.zstd,
    key_file: KeyFileOption = None,
    key_env: KeyEnvOption = None,
    store: StoreOption = DEFAULT_STORE,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a backup of NAME.

    The first time, say what NAME is (--files, --sqlite, --postgres or --pitr, with
    --key-file or --key-env to encrypt); the catalog remembers it.
    """
    with errors("backup create"):
        manager = open_manager(store, catalog)
        source = build_source(
            files,
            sqlite,
            postgres,
            pitr,
            archive,
            wal_command,
            include or [],
            exclude or [],
            key_file,
            key_env,
        )
        key = load_key(key_file, key_env)
        if source is not None:
            manager.configure(name, source, key=key, compression=compression.value)
        elif key is not None:
            manager.add_key(key)
        days = None if retention is None else retention * 86_400
        with render.progress(f"backup {name}", enabled=not as_json) as advance:
            backup = manager.create(
                name, kind.value, retention=days, tags=tag or [], progress=advance
            )
    if as_json:
        render.write_json(backup.to_dict())
        return
    note = f" ({backup.stats['promoted']})" if "promoted" in backup.stats else ""
    typer.echo(
        f"{backup.kind} backup {backup.id} completed: {render.human(backup.size)} stored in "
        f"{render.seconds(backup.duration)}{note}"
    )


@backup_app.command("list")
def list_backups(
    name: Annotated[str | None, typer.Option(help="only this name's backups")] = None,
    store: StoreOption = DEFAULT_STORE,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the backups in the catalog, oldest first."""
    with errors("backup list"):
        records = open_manager(store, catalog).list(name)
    if as_json:
        render.write_json([b.to_dict() for b in records])
    else:
        render.backups(_render.console(False), records)


@backup_app.command()
def show(
    backup_id: Annotated[str, typer.Option("--backup-id", help="the backup")],
    store: StoreOption = DEFAULT_STORE,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one backup: its record, artifacts and checksums."""
    with errors("backup show"):
        record = open_manager(store, catalog).show(backup_id)
    if as_json:
        render.write_json(record.to_dict())
    else:
        render.show(_render.console(False), record)


@backup_app.command()
def restore(
    backup_id: Annotated[str, typer.Option("--backup-id", help="the backup to restore")],
    destination: Annotated[
        str, typer.Option(help="an empty directory (for --postgres backups: a database DSN)")
    ],
    force: Annotated[bool, typer.Option("--force", help="restore into a non-empty target")] = False,
    key_file: KeyFileOption = None,
    key_env: KeyEnvOption = None,
    store: StoreOption = DEFAULT_STORE,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore a backup with every backup it builds on.

    Every checksum of the chain is verified before anything is written.
    """
    with errors("backup restore"):
        manager = open_manager(store, catalog)
        with render.progress(f"restore {backup_id}", enabled=not as_json) as advance:
            result = manager.restore(
                backup_id,
                destination,
                force=force,
                key=load_key(key_file, key_env),
                progress=advance,
            )
    if as_json:
        render.write_json(result.to_dict())
        return
    typer.echo(
        f"restored {backup_id} ({len(result.chain)} backups) into {destination} "
        f"in {result.seconds:.1f}s"
    )


@backup_app.command()
def verify(
    backup_id: Annotated[str | None, typer.Option("--backup-id", help="the backup")] = None,
    name: Annotated[str | None, typer.Option(help="verify NAME's latest backup")] = None,
    deep: Annotated[
        bool, typer.Option("--deep", help="also restore into scratch and check the copy")
    ] = False,
    key_file: KeyFileOption = None,
    key_env: KeyEnvOption = None,
    store: StoreOption = DEFAULT_STORE,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-read and re-hash every artifact of a backup; exit 1 if anything differs."""
    from buttress.errors import BackupError, ConfigError

    with errors("backup verify"):
        manager = open_manager(store, catalog)
        if (backup_id is None) == (name is None):
            raise ConfigError("--backup-id", backup_id, "give exactly one of --backup-id, --name")
        if backup_id is None:
            latest = manager.catalog.latest(str(name))
            if latest is None:
                raise BackupError(f"no completed backup of {name!r}")
            backup_id = latest.id
        result = manager.verify(backup_id, deep=deep, key=load_key(key_file, key_env))
    if as_json:
        render.write_json(result.to_dict())
    else:
        render.verify(_render.console(False), result)
    raise typer.Exit(0 if result.ok else 1)


def drill(
    name: Annotated[str, typer.Option("--name", help="drill NAME's latest backup")],
    query: Annotated[
        list[str] | None, typer.Option("--query", help="SQL whose first column must be true")
    ] = None,
    file: Annotated[
        list[str] | None, typer.Option("--file", help="path that must exist in the restore")
    ] = None,
    freshness_query: Annotated[
        str | None, typer.Option(help="SQL returning the time of the newest data (for RPO)")
    ] = None,
    key_file: KeyFileOption = None,
    key_env: KeyEnvOption = None,
    store: StoreOption = DEFAULT_STORE,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore NAME's latest backup into scratch, validate it, record RTO and RPO.

    Exit 1 if the drill fails (a drill.failed alert event is raised).
    """
    with errors("backup drill"):
        manager = open_manager(store, catalog)
        key = load_key(key_file, key_env)
        if key is not None:
            manager.add_key(key)
        result = manager.drill(
            name, queries=query or [], files=file or [], freshness_query=freshness_query
        )
    if as_json:
        render.write_json(result.to_dict())
    else:
        out = _render.console(False)
        for c in result.checks:
            out.print(f"{'ok' if c.ok else 'FAIL'}  {c.name}: {c.detail}", markup=False)
        status = "passed" if result.ok else f"FAILED: {result.error}"
        out.print(
            f"drill {name} {status}; RTO {render.seconds(result.rto_seconds)}, "
            f"RPO {render.seconds(result.rpo_seconds)}",
            markup=False,
        )
    raise typer.Exit(0 if result.ok else 1)


backup_app.command("drill")(drill)
backup_app.command("test-recovery", help="Alias of drill.")(drill)


@backup_app.command()
def drills(
    name: Annotated[str | None, typer.Option(help="only this name's drills")] = None,
    limit: Annotated[int, typer.Option(min=1, help="how many, newest first")] = 20,
    store: StoreOption = DEFAULT_STORE,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """The drill history with each drill's RTO and RPO, newest first."""
    with errors("backup drills"):
        results = open_manager(store, catalog).drills(name, limit=limit)
    if as_json:
        render.write_json([d.to_dict() for d in results])
    else:
        render.drills(_render.console(False), results)


@backup_app.command()
def pitr(
    target_time: Annotated[
        str, typer.Option(help="recover to this time (ISO 8601, UTC if no zone), or 'latest'")
    ],
    destination: Annotated[Path, typer.Option(help="an empty directory for the data directory")],
    name: Annotated[str | None, typer.Option(help="the PITR backup name (if several)")] = None,
    start: Annotated[
        bool, typer.Option("--start", help="start the server there and wait for recovery")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="restore into a non-empty directory")
    ] = False,
    store: StoreOption = DEFAULT_STORE,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore a PostgreSQL cluster as it was at TARGET_TIME.

    The newest base backup made before it is restored, then WAL is replayed up to it
    (the restore_command is `buttress wal fetch`).
    """
    with errors("backup pitr"):
        manager = open_manager(store, catalog)
        with render.progress("point-in-time restore", enabled=not as_json) as advance:
            result = manager.pitr(
                target_time, destination, name=name, start=start, force=force, progress=advance
            )
    if as_json:
        render.write_json(result.to_dict())
        return
    typer.echo(
        f"restored base backup {result.backup_id} into {destination}, recovery to {target_time}"
    )
    if not start:
        typer.echo(f"start it (as the postgres user): pg_ctl -D {destination} start")


@backup_app.command()
def prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only show what would go")] = False,
    name: Annotated[str | None, typer.Option(help="only this name's backups")] = None,
    keep_last: Annotated[int | None, typer.Option(min=0, help="keep the last N")] = None,
    keep_daily: Annotated[int, typer.Option(min=0, help="newest of each of N days")] = 0,
    keep_weekly: Annotated[int, typer.Option(min=0, help="newest of each of N weeks")] = 0,
    keep_monthly: Annotated[int, typer.Option(min=0, help="newest of each of N months")] = 0,
    keep_yearly: Annotated[int, typer.Option(min=0, help="newest of each of N years")] = 0,
    store: StoreOption = DEFAULT_STORE,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete the backups that no retention rule keeps (--dry-run: only show them).

    Failed backups and expired --retention go; with --keep-* options, so does everything
    beyond them. A backup that a kept one builds on always stays.
    """
    from buttress.backup import RetentionPolicy

    counts = (keep_daily, keep_weekly, keep_monthly, keep_yearly)
    with errors("backup prune"):
        policy = None
        if keep_last is not None or any(counts):
            policy = RetentionPolicy(keep_last or 0, *counts)
        result = open_manager(store, catalog).prune(policy, name=name, dry_run=dry_run)
    if as_json:
        render.write_json(result.to_dict())
    else:
        render.prune(_render.console(False), result)
