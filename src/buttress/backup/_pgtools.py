"""Running PostgreSQL's programs: DSNs without passwords, streaming a program's output into
an artifact, finding the binaries, and running them as the ``postgres`` user."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from buttress._redact import redact
from buttress.errors import BackupError, ConfigError

__all__ = [
    "as_user",
    "bin_path",
    "check_dsn",
    "connect",
    "environment",
    "run",
    "stream_output",
]

_KV_PASSWORD = re.compile(r"(^|\s)password\s*=", re.IGNORECASE)
MISSING_PSYCOPG = "this needs the 'postgres' extra: pip install 'buttress[postgres]'"


def check_dsn(field: str, dsn: object) -> str:
    """A DSN without a password (the catalog stores it): use ``password_env``, PGPASSWORD or
    ~/.pgpass for the password."""
    if not isinstance(dsn, str) or not dsn:
        raise ConfigError(field, dsn, "must be a PostgreSQL DSN")
    has_password = False
    if "://" in dsn:
        has_password = urlsplit(dsn).password is not None or "password=" in dsn.lower()
    else:
        has_password = bool(_KV_PASSWORD.search(dsn))
    if has_password:
        raise ConfigError(
            field,
            redact(dsn),
            "must not hold a password (it would be stored in the catalog): "
            "use password_env=, PGPASSWORD or ~/.pgpass",
        )
    return dsn


def environment(password_env: str | None) -> dict[str, str]:
    """The environment for a PostgreSQL program: ours, plus PGPASSWORD from ``password_env``."""
    env = dict(os.environ)
    if password_env:
        value = os.environ.get(password_env)
        if value is None:
            raise BackupError(f"the environment variable {password_env} (password_env) is not set")
        env["PGPASSWORD"] = value
    return env


def bin_path(program: str, pg_bin: str | None = None, version: str | None = None) -> str:
    """The path of ``program``: in ``pg_bin``, else in the installed ``version``'s directory,
    else on PATH, else the newest ``/usr/lib/postgresql/*/bin``."""
    candidates = []
    if pg_bin:
        candidates.append(os.path.join(pg_bin, program))
    if version:
        candidates.append(f"/usr/lib/postgresql/{version}/bin/{program}")
    found = shutil.which(program)
    if found and not version:
        candidates.append(found)
    versions = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{program}"),
        key=lambda p: int(re.sub(r"\D", "", p.split("/")[4]) or 0),
        reverse=True,
    )
    candidates.extend(versions)
    if found:
        candidates.append(found)
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise BackupError(
        f"{program} not found (install PostgreSQL's client/server programs or set pg_bin)"
    )


def as_user(args: Sequence[str], user: str | None) -> list[str]:
    """``args`` run as ``user`` (through ``runuser``) when we are root and ``user`` is set."""
    if user and os.geteuid() == 0:
        runner = shutil.which("runuser") or "/usr/sbin/runuser"
        return [runner, "-u", user, "--", *args]
    return list(args)


def run(
    args: Sequence[str], *, env: dict[str, str] | None = None, what: str, cwd: str | None = None
) -> str:
    """Run a program to completion; its stdout, or ``BackupError`` with its stderr's tail."""
    try:
        done = subprocess.run(
            list(args), env=env, cwd=cwd, capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise BackupError(f"{what}: cannot run {args[0]}: {exc}") from exc
    if done.returncode != 0:
        raise BackupError(f"{what} failed (exit {done.returncode}): {_tail(done.stderr)}")
    return done.stdout


def _tail(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return redact(text[-limit:] if len(text) > limit else text)


def stream_output(
    args: Sequence[str],
    sink: Callable[[bytes], Any],
    *,
    env: dict[str, str] | None,
    what: str,
    block: int = 1 << 20,
) -> str:
    """Run a program and feed its stdout to ``sink`` in blocks; returns its stderr. Stderr goes
    to a temporary file, so a chatty program never blocks on a full pipe."""
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=err, env=env)
        except OSError as exc:
            raise BackupError(f"{what}: cannot run {args[0]}: {exc}") from exc
        assert proc.stdout is not None
        try:
            while data := proc.stdout.read(block):
                sink(data)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()
        code = proc.wait()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if code != 0:
        raise BackupError(f"{what} failed (exit {code}): {_tail(stderr)}")
    return stderr


@contextlib.contextmanager
def connect(dsn: str, password_env: str | None = None, **kwargs: Any) -> Iterator[Any]:
    """A psycopg connection in autocommit mode (``BackupError`` if it fails)."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise ImportError(MISSING_PSYCOPG) from exc
    if password_env:
        kwargs["password"] = environment(password_env)["PGPASSWORD"]
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10, **kwargs)
    except psycopg.Error as exc:
        raise BackupError(f"cannot connect to {redact(dsn)}: {redact(str(exc))}") from None
    with conn:
        yield conn


def split_password(dsn: str) -> tuple[str, str | None]:
    """``dsn`` without its password, and the password (None if it has none)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    password = params.pop("password", None)
    if password is None:
        return dsn, None
    return make_conninfo("", **params), str(password)


def with_dbname(dsn: str, dbname: str) -> str:
    """``dsn`` pointing at database ``dbname``."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn, dbname=dbname)


def dbname(dsn: str) -> str | None:
    """The database a DSN names, if any."""
    from psycopg.conninfo import conninfo_to_dict

    value = conninfo_to_dict(dsn).get("dbname")
    return None if value is None else str(value)


def private_dir(owner: str | None, prefix: str) -> Path:
    """A new temporary directory (mode 0700) that ``owner`` owns when we are root."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if owner and os.geteuid() == 0:
        chown_tree(path, owner)
    return path


def chown_tree(path: Path, owner: str) -> None:
    """Give ``path`` and everything under it to ``owner`` (symbolic links themselves)."""
    import pwd

    entry = pwd.getpwnam(owner)
    uid, gid = entry.pw_uid, entry.pw_gid
    os.chown(path, uid, gid)
    for directory, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(directory, name), uid, gid, follow_symlinks=False)
