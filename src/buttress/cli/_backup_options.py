"""Options and helpers shared by the backup and WAL commands: the store, keys, sources and
how errors become exit statuses."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from buttress.cli import _render

if TYPE_CHECKING:
    from buttress.backup import BackupManager, EncryptionKey, Source

__all__ = [
    "DEFAULT_STORE",
    "ArchiveOption",
    "CatalogOption",
    "Compression",
    "JsonOption",
    "KeyEnvOption",
    "KeyFileOption",
    "Kind",
    "StoreOption",
    "build_source",
    "errors",
    "fail",
    "load_key",
    "open_manager",
]

StoreOption = Annotated[
    Path,
    typer.Option(
        "--store",
        envvar="BUTTRESS_BACKUP_STORE",
        help="backup store: catalog.db and artifacts/ (env BUTTRESS_BACKUP_STORE)",
        file_okay=False,
    ),
]
CatalogOption = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        envvar="BUTTRESS_BACKUP_CATALOG",
        help="catalog file (default: STORE/catalog.db; env BUTTRESS_BACKUP_CATALOG)",
        dir_okay=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
KeyFileOption = Annotated[
    Path | None, typer.Option("--key-file", help="encryption key file (hex or base64)")
]
KeyEnvOption = Annotated[
    str | None, typer.Option("--key-env", help="environment variable holding the key")
]
DEFAULT_STORE = Path("buttress-backups")


class Kind(enum.StrEnum):
    """Backup kinds."""

    full = "full"
    incremental = "incremental"
    differential = "differential"


class Compression(enum.StrEnum):
    """Compressions."""

    zstd = "zstd"
    gzip = "gzip"
    none = "none"


ArchiveOption = Annotated[
    Path,
    typer.Option(
        help="the WAL archive directory (env BUTTRESS_WAL_ARCHIVE)", envvar="BUTTRESS_WAL_ARCHIVE"
    ),
]


def fail(command: str, exc: BaseException, code: int) -> typer.Exit:
    from buttress._redact import redact

    _render.console(False, stderr=True).print(
        f"buttress {command}: {redact(str(exc))}", markup=False
    )
    return typer.Exit(code)


@contextmanager
def errors(command: str) -> Iterator[None]:
    """Turn our errors into a message on stderr and an exit status (2 config, 1 the rest)."""
    from buttress.errors import BackupError, ConfigError

    try:
        yield
    except ConfigError as exc:
        raise fail(command, exc, 2) from None
    except (BackupError, ImportError) as exc:
        raise fail(command, exc, 1) from None


def open_manager(store: Path, catalog: Path | None) -> BackupManager:
    from buttress.backup import BackupManager

    return BackupManager(catalog or store / "catalog.db", store / "artifacts")


def load_key(key_file: Path | None, key_env: str | None) -> EncryptionKey | None:
    from buttress.backup import EncryptionKey
    from buttress.errors import ConfigError

    if key_file is not None and key_env is not None:
        raise ConfigError("--key-file", str(key_file), "must not be given with --key-env")
    if key_file is not None:
        return EncryptionKey.from_file(key_file)
    if key_env is not None:
        return EncryptionKey.from_env(key_env)
    return None


def build_source(
    files: Path | None,
    sqlite: Path | None,
    postgres: str | None,
    pitr: str | None,
    archive: Path | None,
    wal_command: str,
    include: list[str],
    exclude: list[str],
    key_file: Path | None,
    key_env: str | None,
) -> Source | None:
    from buttress.backup import Files, PostgresDump, PostgresPITR, SQLiteDatabase
    from buttress.errors import ConfigError

    given = [x for x in (files, sqlite, postgres, pitr) if x is not None]
    if len(given) > 1:
        raise ConfigError("source", "several", "give one of --files, --sqlite, --postgres, --pitr")
    if files is not None:
        return Files(files, include=include, exclude=exclude)
    if sqlite is not None:
        return SQLiteDatabase(sqlite)
    if postgres is not None:
        return PostgresDump(postgres)
    if pitr is not None:
        if archive is None:
            raise ConfigError("--archive", None, "must name the WAL archive directory for --pitr")
        return PostgresPITR(
            pitr,
            archive=archive,
            wal_command=wal_command,
            wal_key_file=None if key_file is None else str(key_file.absolute()),
            wal_key_env=key_env,
        )
    return None
