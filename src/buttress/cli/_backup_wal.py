"""``buttress wal push`` (archive_command) and ``buttress wal fetch`` (restore_command)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from buttress.cli._backup_options import (
    ArchiveOption,
    Compression,
    KeyEnvOption,
    KeyFileOption,
    errors,
    fail,
    load_key,
)

__all__ = ["FETCH_DAMAGED", "wal_app"]

wal_app = typer.Typer(
    help="PostgreSQL WAL archiving: archive_command and restore_command.", no_args_is_help=True
)


@wal_app.command()
def push(
    source: Annotated[
        Path, typer.Argument(metavar="PATH", help="%p: the WAL file to archive", dir_okay=False)
    ],
    wal_name: Annotated[str, typer.Argument(metavar="NAME", help="%f: its file name")],
    archive: ArchiveOption,
    compression: Annotated[Compression, typer.Option(help="zstd, gzip or none")] = Compression.zstd,
    key_file: KeyFileOption = None,
    key_env: KeyEnvOption = None,
) -> None:
    """archive_command: `buttress wal push %p %f --archive DIR`.

    Exit 0 once the file is durably archived (or already was, identical); non-zero otherwise.
    """
    from buttress.backup import WalArchive

    with errors("wal push"):
        WalArchive(archive, key=load_key(key_file, key_env), compression=compression.value).push(
            source, wal_name
        )


FETCH_DAMAGED = 200
"""Exit status of ``wal fetch`` for a damaged or undecryptable file: above 125, so that
PostgreSQL aborts recovery instead of taking it for the end of the archive."""


@wal_app.command()
def fetch(
    wal_name: Annotated[str, typer.Argument(metavar="NAME", help="%f: the file wanted")],
    target: Annotated[Path, typer.Argument(metavar="PATH", help="%p: where to write it")],
    archive: ArchiveOption,
    key_file: KeyFileOption = None,
    key_env: KeyEnvOption = None,
) -> None:
    """restore_command: `buttress wal fetch %f %p --archive DIR`.

    Exit 0 when written, 1 when the archive has no such file, 200 when it is damaged or cannot
    be decrypted (PostgreSQL then stops recovery instead of ending it early).
    """
    from buttress.backup import WalArchive
    from buttress.errors import BackupError, ConfigError

    try:
        found = WalArchive(archive, key=load_key(key_file, key_env)).fetch(wal_name, target)
    except ConfigError as exc:
        raise fail("wal fetch", exc, 2) from None
    except BackupError as exc:
        raise fail("wal fetch", exc, FETCH_DAMAGED) from None
    if not found:
        raise typer.Exit(1)
