"""PostgreSQL point-in-time recovery: base backups with ``pg_basebackup``, WAL through
``buttress wal push`` / ``wal fetch``, restore to a target time.

The cluster archives its WAL with ``archive_command = 'buttress wal push %p %f --archive DIR'``.
A base backup is ``pg_basebackup -D - -Ft -X none`` streamed into one artifact (labelled with
the backup id, so the archive's ``.backup`` file says where its WAL starts). A restore
extracts the base backup into an empty directory, writes ``recovery.signal`` and appends the
recovery settings to ``postgresql.auto.conf``: ``restore_command = 'buttress wal fetch %f %p
--archive DIR'``, ``recovery_target_time`` when a target is given (else recovery replays all
archived WAL), ``recovery_target_action = 'promote'`` and ``archive_mode = 'off'`` (turn it
back on once the restored cluster is the primary). Starting the server replays the WAL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from buttress._redact import redact
from buttress.backup import _pgtools as pg
from buttress.backup._cluster import PostgresCluster
from buttress.backup._crypto import EncryptionKey
from buttress.backup._model import Backup, CheckResult
from buttress.backup._source import BackupJob, RestoreJob, register
from buttress.backup._tar import SafeRoot
from buttress.backup._wal import WalArchive
from buttress.errors import BackupError, ConfigError

if TYPE_CHECKING:
    from buttress.backup._manager import BackupManager

__all__ = ["PostgresPITR", "pitr_base", "target_time"]

ARTIFACT = "base.tar"


def target_time(value: object) -> str:
    """A recovery target as PostgreSQL reads it, from epoch seconds, an aware ``datetime`` or
    an ISO 8601 string (a string without a zone is UTC)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError("target_time", value, "must be an ISO 8601 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    else:
        raise ConfigError("target_time", value, "must be an ISO 8601 time, a datetime or epoch")
    return moment.astimezone(UTC).isoformat(sep=" ")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class PostgresPITR:
    """Point-in-time recovery of the cluster at ``dsn`` (a replication connection).

    ``archive``: the WAL archive directory that the cluster's ``archive_command`` pushes to;
    ``wal_command``: how the restored server runs buttress (default ``buttress``; it runs as
    the server's user); ``wal_key_file`` / ``wal_key_env``: the key the archive is encrypted
    with, passed to ``wal fetch``; ``owner``: the user owning restored data directories and
    running scratch servers (default ``postgres``, used when running as root).
    """

    strategy: ClassVar[str] = "pitr"
    incremental: ClassVar[bool] = False
    target_kind: ClassVar[str] = "directory"

    def __init__(
        self,
        dsn: str,
        *,
        archive: str | os.PathLike[str],
        wal_command: str = "buttress",
        wal_key_file: str | None = None,
        wal_key_env: str | None = None,
        owner: str | None = "postgres",
        password_env: str | None = None,
        pg_bin: str | None = None,
    ) -> None:
        self.dsn = pg.check_dsn("dsn", dsn)
        if not os.fspath(archive):
            raise ConfigError("archive", archive, "must be the WAL archive directory")
        self.archive = Path(archive).absolute()
        if not wal_command.strip():
            raise ConfigError("wal_command", wal_command, "must be a command")
        self.wal_command = wal_command
        self.wal_key_file = wal_key_file
        self.wal_key_env = wal_key_env
        self.owner = owner
        self.password_env = password_env
        self.pg_bin = pg_bin
        self._clusters: dict[str, PostgresCluster] = {}

    def spec(self) -> dict[str, Any]:
        """The DSN (without password), the archive and the options."""
        return {
            "dsn": self.dsn,
            "archive": str(self.archive),
            "wal_command": self.wal_command,
            "wal_key_file": self.wal_key_file,
            "wal_key_env": self.wal_key_env,
            "owner": self.owner,
            "password_env": self.password_env,
            "pg_bin": self.pg_bin,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> PostgresPITR:
        """Rebuild from ``spec()``."""
        fields = ("wal_command", "wal_key_file", "wal_key_env", "owner", "password_env", "pg_bin")
        return cls(
            spec["dsn"], archive=spec["archive"], **{k: spec[k] for k in fields if k in spec}
        )

    def __repr__(self) -> str:
        return f"PostgresPITR({redact(self.dsn)!r}, archive={str(self.archive)!r})"

    def archive_command(self) -> str:
        """The ``archive_command`` setting for the cluster."""
        return f"{self.wal_command} wal push %p %f --archive {self.archive}{self._key_flags()}"

    def restore_command(self) -> str:
        """The ``restore_command`` setting written into restored clusters."""
        return f"{self.wal_command} wal fetch %f %p --archive {self.archive}{self._key_flags()}"

    def wal_key(self) -> EncryptionKey | None:
        """The archive's key, from ``wal_key_file`` or ``wal_key_env`` (None: not encrypted)."""
        if self.wal_key_file:
            return EncryptionKey.from_file(self.wal_key_file)
        if self.wal_key_env:
            return EncryptionKey.from_env(self.wal_key_env)
        return None

    def _key_flags(self) -> str:
        if self.wal_key_file:
            return f" --key-file {self.wal_key_file}"
        if self.wal_key_env:
            return f" --key-env {self.wal_key_env}"
        return ""

    def backup(self, job: BackupJob) -> None:
        """Stream a base backup (tar, WAL from the archive) into the artifact."""
        args = [
            pg.bin_path("pg_basebackup", self.pg_bin),
            f"--dbname={self.dsn}",
            "--pgdata=-",
            "--format=tar",
            "--wal-method=none",
            "--checkpoint=fast",
            f"--label={job.backup.id}",
            "--no-password",
        ]
        size = 0
        with job.artifact(ARTIFACT) as out:

            def sink(data: bytes) -> None:
                nonlocal size
                out.write(data)
                size += len(data)
                job.progress(len(data))

            pg.stream_output(
                args, sink, env=pg.environment(self.password_env), what="pg_basebackup"
            )
        # Consistent once the backup has ended and its WAL is archived (pg_basebackup waits).
        job.data_time = job.clock.time()
        job.stats.update(bytes=size, archive=str(self.archive), label=job.backup.id)

    def restore(self, job: RestoreJob) -> None:
        """Extract the base backup into ``job.target`` and configure recovery. Options:
        ``target_time`` (recover to then; default: all archived WAL), ``start`` (start the
        server and wait for the end of recovery; scratch settings), ``owner``."""
        target = Path(job.target)
        owner = job.options.get("owner", self.owner)
        with job.open(job.backup, ARTIFACT) as data, SafeRoot(target, owners=False) as root:
            count, size = root.extract(data)
            data.finish()
        os.chmod(target, 0o700)
        for stale in ("postmaster.pid", "postmaster.opts", "standby.signal"):
            with contextlib.suppress(FileNotFoundError):
                (target / stale).unlink()
        if not (target / "postgresql.conf").exists():  # Debian keeps it in /etc
            (target / "postgresql.conf").write_text("")
        settings = {
            "restore_command": self.restore_command(),
            "recovery_target_action": "promote",
            "archive_mode": "off",
        }
        when = job.options.get("target_time")
        if when is not None:
            settings["recovery_target_time"] = target_time(when)
        lines = [f"\n# buttress: restored from {job.backup.id}\n"]
        lines += [f"{k} = {_quote(v)}\n" for k, v in settings.items()]
        with open(target / "postgresql.auto.conf", "a") as conf:
            conf.writelines(lines)
        (target / "recovery.signal").write_text("")
        if owner and os.geteuid() == 0:
            pg.chown_tree(target, owner)
        job.stats.update(files=count, bytes=size, recovery=settings)
        if job.options.get("start"):
            cluster = self._scratch_cluster(target, owner)
            cluster.start()
            self._clusters[str(target)] = cluster
            cluster.wait_promoted()

    def _scratch_cluster(self, data_dir: Path, owner: str | None) -> PostgresCluster:
        hba = data_dir.parent / "sock" / "pg_hba.conf"
        cluster = PostgresCluster(
            data_dir,
            user=owner,
            socket_dir=data_dir.parent / "sock",
            pg_bin=self.pg_bin,
            settings={"hba_file": str(hba), "archive_mode": "off", "port": "5432"},
        )
        cluster.socket_dir.mkdir(mode=0o700, exist_ok=True)
        hba.write_text("local all all trust\n")
        if owner and os.geteuid() == 0:
            pg.chown_tree(cluster.socket_dir, owner)
        return cluster

    def check(self, job: RestoreJob) -> list[CheckResult]:
        """With a started server: recovery finished and the database answers."""
        cluster = self._clusters.get(job.target)
        if cluster is None:
            files = job.stats.get("files", 0)
            return [
                CheckResult("base backup restored", True, f"{files} files; recovery configured")
            ]
        try:
            value = self.query(job.target, "SELECT NOT pg_is_in_recovery()")
        except BackupError as exc:
            return [CheckResult("recovered server answers", False, str(exc))]
        return [CheckResult("recovered server answers", value is True, "recovery finished")]

    @contextlib.contextmanager
    def scratch(self) -> Iterator[str]:
        """A private temporary directory for a data directory; a server started in it is
        stopped on exit."""
        parent = pg.private_dir(self.owner, "buttress-pitr-")
        data = parent / "data"
        try:
            yield str(data)
        finally:
            cluster = self._clusters.pop(str(data), None)
            if cluster is not None:
                with contextlib.suppress(BackupError):
                    cluster.stop()
            shutil.rmtree(parent, ignore_errors=True)

    def _database(self) -> str:
        try:
            return pg.dbname(self.dsn) or "postgres"
        except Exception:
            return "postgres"

    def query(self, target: str, sql: str) -> object:
        """Run ``sql`` on the server started on ``target``."""
        cluster = self._clusters.get(target)
        if cluster is None:
            raise BackupError("queries need a started server (restore with start=True)")
        with pg.connect(cluster.dsn(self._database())) as conn:
            try:
                row = conn.execute(sql).fetchone()
            except Exception as exc:
                raise BackupError(f"query failed: {redact(str(exc))}") from exc
        return None if row is None else row[0]

    def freshness(self, target: str) -> float | None:
        """The commit time of the last transaction replayed, as epoch seconds."""
        if target not in self._clusters:
            return None
        value = self.query(target, "SELECT extract(epoch FROM pg_last_xact_replay_timestamp())")
        return None if value is None else float(str(value))

    def clean_archive(self, kept_base_ids: list[str]) -> int:
        """Delete archived WAL older than the oldest of the kept base backups."""
        archive = WalArchive(self.archive, key=self.wal_key())
        starts = archive.backup_starts()
        segments = [starts[i] for i in kept_base_ids if i in starts]
        if len(segments) != len(kept_base_ids) or not segments:
            return 0  # a kept base backup's start is unknown: keep everything
        return archive.cleanup(min(segments, key=lambda s: s[8:]))


register("pitr", PostgresPITR.from_spec)


def pitr_base(manager: BackupManager, when: object, name: str | None = None) -> Backup:
    """The newest completed base backup of ``name`` whose data is consistent before ``when``
    (``"latest"``: the newest of all)."""
    latest = when == "latest"
    moment = float("inf") if latest else datetime.fromisoformat(target_time(when)).timestamp()
    names = sorted({b.name for b in manager.list() if b.strategy == PostgresPITR.strategy})
    if name is None:
        if len(names) != 1:
            raise ConfigError("name", name, f"must be one of the PITR backup names {names}")
        name = names[0]
    bases = [
        b
        for b in manager.list(name)
        if b.strategy == PostgresPITR.strategy
        and b.status == "completed"
        and (b.data_time or b.finished_at or 0) <= moment
    ]
    if not bases:
        before = "at all" if latest else f"before {target_time(when)}"
        raise BackupError(f"no completed base backup of {name!r} {before}")
    return bases[-1]
