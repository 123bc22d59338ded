"""PostgreSQL logical backups: ``pg_dump`` in the custom format, ``pg_restore`` with jobs.

``pg_dump --format=custom --compress=0`` streams into the artifact (compressed and encrypted
by buttress, so the dump is compressed once, with zstd). A restore decodes the artifact into a
temporary file (``pg_restore --jobs`` needs a seekable file), checks that the target database
is empty (unless forced, which adds ``--clean --if-exists``), and runs ``pg_restore``. The
target database must exist. Drills and deep verification restore into a scratch database
created on the source's server and dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from buttress._options import integer
from buttress._redact import redact
from buttress.backup import _pgtools as pg
from buttress.backup._model import CheckResult
from buttress.backup._source import BackupJob, RestoreJob, register
from buttress.backup._stream import BLOCK
from buttress.errors import BackupError

__all__ = ["PostgresDump"]

ARTIFACT = "dump.pgcustom"
_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (?!DATA )(\S+) (\S+) ")
_USER_TABLES = (
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg_toast%'"
)


class PostgresDump:
    """A logical backup of the database at ``dsn`` (no password in it: ``password_env``
    names the variable holding it, else PGPASSWORD or ~/.pgpass apply).

    ``jobs``: parallel ``pg_restore`` jobs (default: up to 4, one per CPU); ``no_owner``:
    restore without setting owners (for a server where the roles differ); ``pg_bin``: the
    directory of ``pg_dump``/``pg_restore`` (default: PATH); ``work_dir``: where a restore
    puts the decoded dump (default: the system's temporary directory).
    """

    strategy: ClassVar[str] = "postgres"
    incremental: ClassVar[bool] = False
    target_kind: ClassVar[str] = "database"

    def __init__(
        self,
        dsn: str,
        *,
        jobs: int | None = None,
        no_owner: bool = False,
        password_env: str | None = None,
        pg_bin: str | None = None,
        work_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.dsn = pg.check_dsn("dsn", dsn)
        self.jobs = integer("jobs", jobs) if jobs is not None else min(4, os.cpu_count() or 1)
        self.no_owner = bool(no_owner)
        self.password_env = password_env
        self.pg_bin = pg_bin
        self.work_dir = None if work_dir is None else str(work_dir)

    def spec(self) -> dict[str, Any]:
        """The DSN (without password) and the options."""
        return {
            "dsn": self.dsn,
            "jobs": self.jobs,
            "no_owner": self.no_owner,
            "password_env": self.password_env,
            "pg_bin": self.pg_bin,
            "work_dir": self.work_dir,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> PostgresDump:
        """Rebuild from ``spec()``."""
        return cls(
            spec["dsn"],
            jobs=spec.get("jobs"),
            no_owner=spec.get("no_owner", False),
            password_env=spec.get("password_env"),
            pg_bin=spec.get("pg_bin"),
            work_dir=spec.get("work_dir"),
        )

    def __repr__(self) -> str:
        return f"PostgresDump({redact(self.dsn)!r})"

    def backup(self, job: BackupJob) -> None:
        """Stream ``pg_dump -Fc`` into the artifact."""
        args = [
            pg.bin_path("pg_dump", self.pg_bin),
            "--format=custom",
            "--compress=0",
            "--no-password",
            f"--dbname={self.dsn}",
        ]
        size = 0
        with job.artifact(ARTIFACT) as out:

            def sink(data: bytes) -> None:
                nonlocal size
                out.write(data)
                size += len(data)
                job.progress(len(data))

            job.data_time = job.clock.time()  # pg_dump takes its snapshot as it starts
            pg.stream_output(args, sink, env=pg.environment(self.password_env), what="pg_dump")
        job.stats.update(bytes=size, database=pg.dbname(self.dsn) if _has_psycopg() else None)

    def restore(self, job: RestoreJob) -> None:
        """Decode the dump to a temporary file and ``pg_restore`` it into ``job.target``."""
        target, password = pg.split_password(job.target)
        env = pg.environment(self.password_env)
        if password is not None:  # never on the command line, where ps would show it
            env["PGPASSWORD"] = password
        tables = self._user_tables(job.target)
        if tables and not job.force:
            raise BackupError(
                f"{redact(target)} is not empty ({len(tables)} tables): restore into an empty "
                "database, or force (pg_restore --clean --if-exists)"
            )
        jobs = int(job.options.get("jobs") or self.jobs)
        with tempfile.TemporaryDirectory(prefix="buttress-pg-", dir=self.work_dir) as tmp:
            dump = Path(tmp) / "dump.pgcustom"
            with job.open(job.backup, ARTIFACT) as data, open(dump, "wb", buffering=0) as f:
                while block := data.read(BLOCK):
                    view = memoryview(block)
                    while view:
                        view = view[f.write(view) or 0 :]
                    job.progress(len(block))
                data.finish()
            pg_restore = pg.bin_path("pg_restore", self.pg_bin)
            toc = pg.run([pg_restore, "--list", str(dump)], env=env, what="pg_restore --list")
            expected = sorted(
                {f"{m[1]}.{m[2]}" for m in map(_TOC_TABLE.match, toc.splitlines()) if m}
            )
            args = [
                pg_restore,
                f"--dbname={target}",
                f"--jobs={jobs}",
                "--exit-on-error",
                "--no-password",
            ]
            if job.force:
                args += ["--clean", "--if-exists"]
            if self.no_owner:
                args += ["--no-owner", "--no-acl"]
            pg.run([*args, str(dump)], env=env, what="pg_restore")
        job.stats.update(tables=expected, jobs=jobs)

    def _user_tables(self, dsn: str) -> list[str]:
        with pg.connect(dsn, self.password_env) as conn:
            return sorted(f"{s}.{t}" for s, t in conn.execute(_USER_TABLES).fetchall())

    def check(self, job: RestoreJob) -> list[CheckResult]:
        """Every table of the dump's table of contents exists in the restored database."""
        expected = set(job.stats.get("tables", ()))
        try:
            present = set(self._user_tables(job.target))
        except BackupError as exc:
            return [CheckResult("tables restored", False, str(exc))]
        missing = sorted(expected - present)
        detail = (
            f"{len(expected)} tables of the dump present"
            if not missing
            else ("missing: " + ", ".join(missing[:10]))
        )
        return [CheckResult("tables restored", not missing, detail)]

    @contextlib.contextmanager
    def scratch(self) -> Iterator[str]:
        """A new empty database on the source's server, dropped on exit."""
        name = f"buttress_scratch_{secrets.token_hex(6)}"
        with pg.connect(self.dsn, self.password_env) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield pg.with_dbname(self.dsn, name)
        finally:
            with pg.connect(self.dsn, self.password_env) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def query(self, target: str, sql: str) -> object:
        """Run ``sql`` on the restored database; the first column of the first row."""
        with pg.connect(target, self.password_env) as conn:
            try:
                row = conn.execute(sql).fetchone()
            except Exception as exc:
                raise BackupError(f"query failed: {redact(str(exc))}") from exc
        return None if row is None else row[0]

    def freshness(self, target: str) -> float | None:
        """None: the dump's snapshot time is the newest data."""
        return None


def _has_psycopg() -> bool:
    try:
        import psycopg  # noqa: F401
    except ImportError:  # pragma: no cover
        return False
    return True


register("postgres", PostgresDump.from_spec)
