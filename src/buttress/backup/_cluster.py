"""A PostgreSQL server on a data directory, run with the installed binaries.

PostgreSQL refuses to run as root, so when we are root the programs run as ``user`` (default
``postgres``) through ``runuser``. The server listens only on a Unix socket in a private
directory (no TCP), which is how drills start a scratch cluster on a restored base backup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from buttress.backup import _pgtools as pg
from buttress.errors import BackupError

__all__ = ["PostgresCluster"]


class PostgresCluster:
    """The cluster in ``data_dir``: ``initdb``, ``start``, ``stop``, ``dsn``.

    ``socket_dir`` (default: beside the data directory) holds the Unix socket and the log;
    ``settings`` are passed as ``-c name=value`` at start; ``pg_bin`` is the binaries'
    directory (default: the version in ``PG_VERSION``, else the newest installed).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        user: str | None = "postgres",
        port: int = 5432,
        socket_dir: str | os.PathLike[str] | None = None,
        pg_bin: str | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.user = user
        self.port = port
        self.socket_dir = Path(socket_dir) if socket_dir else self.data_dir.parent / "sock"
        self.pg_bin = pg_bin
        self.settings = dict(settings or {})
        self.running = False

    @property
    def log_file(self) -> Path:
        """The server's log (in the socket directory)."""
        return self.socket_dir / "postgres.log"

    def _bin(self, program: str) -> str:
        version_file = self.data_dir / "PG_VERSION"
        version = version_file.read_text().strip() if version_file.is_file() else None
        return pg.bin_path(program, self.pg_bin, version)

    def _prepare_socket_dir(self) -> None:
        self.socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.user and os.geteuid() == 0:
            pg.chown_tree(self.socket_dir, self.user)

    def initdb(self, *, sync: bool = True) -> None:
        """Create a new cluster (trust authentication, superuser ``postgres``); ``sync=False``
        skips the final fsync (for throwaway clusters)."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self.user and os.geteuid() == 0:
            self.data_dir.mkdir(mode=0o700, exist_ok=True)
            pg.chown_tree(self.data_dir, self.user)
        args = [self._bin("initdb"), "-D", str(self.data_dir), "--auth=trust", "-U", "postgres"]
        if not sync:
            args.append("--no-sync")
        pg.run(pg.as_user(args, self.user), what="initdb", cwd="/")

    def start(self, *, timeout: float = 120.0) -> None:
        """Start the server and wait until it accepts connections."""
        self._prepare_socket_dir()
        options = [
            f"-p {self.port}",
            f"-k {self.socket_dir}",
            "-c listen_addresses=''",
            *(f"-c {k}={v}" for k, v in self.settings.items()),
        ]
        args = [
            self._bin("pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(int(timeout)),
            "-o",
            " ".join(options),
            "start",
        ]
        try:
            pg.run(pg.as_user(args, self.user), what="pg_ctl start", cwd="/")
        except BackupError as exc:
            raise BackupError(f"{exc}; server log: {self.log_tail()}") from None
        self.running = True

    def stop(self) -> None:
        """Stop the server (fast shutdown); nothing happens if it is not running."""
        if not (self.data_dir / "postmaster.pid").exists():
            self.running = False
            return
        args = [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]
        pg.run(pg.as_user(args, self.user), what="pg_ctl stop", cwd="/")
        self.running = False

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq DSN for the Unix socket."""
        return f"host={self.socket_dir} port={self.port} user=postgres dbname={dbname}"

    def wait_promoted(self, *, timeout: float = 120.0) -> None:
        """Wait until recovery has finished and the server accepts writes."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with pg.connect(self.dsn()) as conn:
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        return
            except BackupError:
                if not (self.data_dir / "postmaster.pid").exists():
                    raise BackupError(f"the server stopped: {self.log_tail()}") from None
            if time.monotonic() > deadline:
                raise BackupError(f"recovery did not finish in {timeout:g}s: {self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server's log."""
        try:
            return " | ".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
