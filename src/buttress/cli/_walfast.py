"""``buttress wal push|fetch`` without the command-line framework.

PostgreSQL runs the ``archive_command`` once per WAL segment and the ``restore_command`` once
per segment it replays, so their start-up time adds up (importing typer, rich and every command
module took most of a second). ``buttress.cli.main`` hands ``wal push`` and ``wal fetch`` to
``run`` before importing any of that; ``run`` returns None for anything it does not handle
(``--help``, a missing or unknown option, a directory given as the file), and the typer command
(``_backup_wal``) then prints its usual help or usage error. Behaviour and exit statuses are the
typer commands', option for option (a test compares the two).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

__all__ = ["ARCHIVE_VARIABLE", "FETCH_OPTIONS", "PUSH_OPTIONS", "parse", "run"]

ARCHIVE_VARIABLE = "BUTTRESS_WAL_ARCHIVE"
PUSH_OPTIONS = frozenset({"--archive", "--compression", "--key-file", "--key-env"})
FETCH_OPTIONS = frozenset({"--archive", "--key-file", "--key-env"})
COMPRESSIONS = ("zstd", "gzip", "none")
FETCH_DAMAGED = 200  # as _backup_wal.FETCH_DAMAGED (a test checks they agree)


def parse(
    args: Sequence[str], options: frozenset[str]
) -> tuple[tuple[str, str], dict[str, str]] | None:
    """The two arguments and the options (``--name value`` or ``--name=value``; the last of
    a repeated option wins, as with click), or None when ``args`` are anything else."""
    positional: list[str] = []
    values: dict[str, str] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            positional.extend(args[index + 1 :])
            break
        if arg.startswith("-") and arg != "-":
            name, equals, value = arg.partition("=")
            if name not in options:
                return None
            if not equals:
                index += 1
                if index >= len(args):
                    return None
                value = args[index]
            if not value:
                return None
            values[name] = value
        else:
            positional.append(arg)
        index += 1
    if len(positional) != 2 or not all(positional):
        return None
    return (positional[0], positional[1]), values


def _fail(command: str, exc: BaseException, code: int) -> int:
    from buttress._redact import redact

    print(f"buttress {command}: {redact(str(exc))}", file=sys.stderr)
    return code


def run(command: str, args: Sequence[str]) -> int | None:
    """Run ``wal push`` or ``wal fetch`` with ``args``; the exit status, or None to let the
    typer command handle them."""
    parsed = parse(args, PUSH_OPTIONS if command == "push" else FETCH_OPTIONS)
    if command not in ("push", "fetch") or parsed is None:
        return None
    (first, second), values = parsed
    archive = values.get("--archive") or os.environ.get(ARCHIVE_VARIABLE)
    compression = values.get("--compression", "zstd")
    if not archive or compression not in COMPRESSIONS:
        return None
    if command == "push" and os.path.isdir(first):
        return None  # the typer command refuses a directory as PATH
    from buttress.backup._crypto import EncryptionKey
    from buttress.backup._wal import WalArchive
    from buttress.errors import BackupError, ConfigError

    key_file, key_env = values.get("--key-file"), values.get("--key-env")
    try:
        if key_file is not None and key_env is not None:
            raise ConfigError("--key-file", key_file, "must not be given with --key-env")
        key = (
            EncryptionKey.from_file(key_file)
            if key_file is not None
            else EncryptionKey.from_env(key_env)
            if key_env is not None
            else None
        )
        if command == "push":
            WalArchive(archive, key=key, compression=compression).push(first, second)
            return 0
        found = WalArchive(archive, key=key).fetch(first, second)
    except ConfigError as exc:
        return _fail(f"wal {command}", exc, 2)
    except (BackupError, ImportError) as exc:
        damaged = command == "fetch" and isinstance(exc, BackupError)
        return _fail(f"wal {command}", exc, FETCH_DAMAGED if damaged else 1)
    return 0 if found else 1
