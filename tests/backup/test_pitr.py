"""Point-in-time recovery on a scratch cluster: WAL archived through `buttress wal push`, a
base backup, rows before and after a recorded time, and a restore to that time."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import buttress
from buttress.backup import BackupManager, PostgresCluster, PostgresPITR
from buttress.backup import _pgtools as pg
from tests.servers import unreachable

psycopg = pytest.importorskip("psycopg")

pytestmark = pytest.mark.slow


def _binaries_or_skip() -> None:
    missing = [
        p
        for p in ("initdb", "pg_ctl", "postgres")
        if not glob.glob(f"/usr/lib/postgresql/*/bin/{p}")
    ]
    if shutil.which("pg_basebackup") is None:
        missing.append("pg_basebackup")
    if missing:
        unreachable(
            "PostgreSQL server binaries",
            "/usr/lib/postgresql/*/bin",
            FileNotFoundError(", ".join(missing)),
        )
    if (
        os.geteuid() == 0
        and shutil.which("runuser") is None
        and not os.path.exists("/usr/sbin/runuser")
    ):
        unreachable("runuser (to run PostgreSQL as postgres)", "PATH", FileNotFoundError("runuser"))


def _wal_command() -> str:
    """How the postgres user can run `buttress`: this interpreter if it may, else the system
    Python with our source and site-packages on PYTHONPATH (the venv lives under /root here)."""
    user = "postgres" if os.geteuid() == 0 else None
    probe = "import buttress.cli, zstandard, typer"
    for command in (
        [sys.executable],
        [
            "env",
            f"PYTHONPATH={Path(buttress.__file__).parent.parent}:{sysconfig.get_paths()['purelib']}",
            "/usr/bin/python3",
        ],
    ):
        done = subprocess.run(
            pg.as_user([*command, "-c", probe], user), capture_output=True, cwd="/"
        )
        if done.returncode == 0:
            return " ".join([*command, "-m", "buttress"])
    return unreachable(
        "a Python the postgres user can run buttress with",
        sys.executable,
        PermissionError("no interpreter"),
    )


def _query(dsn: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description is not None else []


def _wait_archived(dsn: str) -> None:
    """Switch WAL and wait (polling) until the archiver has pushed that segment."""
    (segment,) = _query(dsn, "SELECT pg_walfile_name(pg_switch_wal())")[0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        (done, failed) = _query(
            dsn, "SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver"
        )[0]
        if done is not None and str(done) >= str(segment):
            return
        time.sleep(0.05)
    raise AssertionError(f"segment {segment} was not archived (last failed: {failed})")


@pytest.fixture
def source_cluster() -> Iterator[tuple[PostgresCluster, Path, str]]:
    """A scratch cluster archiving its WAL through `buttress wal push`; stopped and removed."""
    _binaries_or_skip()
    wal_command = _wal_command()
    parent = pg.private_dir("postgres" if os.geteuid() == 0 else None, "buttress-pitr-test-")
    cluster = PostgresCluster(parent / "data", socket_dir=parent / "sock", port=5432)
    archive = parent / "archive"
    try:
        cluster.initdb(sync=False)
        archive.mkdir()
        if os.geteuid() == 0:
            pg.chown_tree(archive, "postgres")
        source = PostgresPITR(cluster.dsn(), archive=archive, wal_command=wal_command)
        with open(cluster.data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "wal_level = replica\narchive_mode = on\nfsync = off\n"
                f"archive_command = '{source.archive_command()}'\n"
            )
        cluster.start()
        yield cluster, parent, wal_command
    finally:
        with contextlib.suppress(Exception):
            cluster.stop()
        shutil.rmtree(parent, ignore_errors=True)


def test_restore_to_a_time_has_every_earlier_row_and_none_later(
    source_cluster: tuple[PostgresCluster, Path, str], tmp_path: Path
) -> None:
    """Rows 1-100 before the base backup, 101-200 after it, then the recorded time, then
    201-300: recovery to that time has exactly rows 1-200."""
    cluster, parent, wal_command = source_cluster
    dsn = cluster.dsn()
    manager = BackupManager(tmp_path / "catalog.db", tmp_path / "store")
    manager.configure("pg", PostgresPITR(dsn, archive=parent / "archive", wal_command=wal_command))
    _query(dsn, "CREATE TABLE t (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
    _query(dsn, "INSERT INTO t (id) SELECT generate_series(1, 100)")
    base = manager.create("pg")
    assert base.strategy == "pitr"
    assert base.stats["bytes"] > 0
    for i in range(101, 201):  # one transaction each: many commit records before the target
        _query(dsn, f"INSERT INTO t (id) VALUES ({i})")
    (target,) = _query(dsn, "SELECT clock_timestamp()::text")[0]
    time.sleep(0.01)
    _query(dsn, "INSERT INTO t (id) SELECT generate_series(201, 300)")
    _wait_archived(dsn)
    restored = parent / "restored" / "data"
    result = manager.pitr(str(target), restored)
    assert result.backup_id == base.id
    auto_conf = (restored / "postgresql.auto.conf").read_text()
    assert "wal fetch %f %p" in auto_conf
    assert "recovery_target_time" in auto_conf
    assert (restored / "recovery.signal").exists()
    replica = PostgresCluster(restored, socket_dir=parent / "rsock", port=5433)
    try:
        replica.start()
        replica.wait_promoted()
        rows = _query(replica.dsn(), "SELECT min(id), max(id), count(*) FROM t")
    finally:
        replica.stop()
    assert rows == [(1, 200, 200)]


def test_drill_on_a_scratch_cluster(
    source_cluster: tuple[PostgresCluster, Path, str], tmp_path: Path
) -> None:
    """A PITR drill restores the base backup into a scratch cluster run as postgres, replays
    all archived WAL, runs the queries, and takes RPO from the last replayed commit."""
    cluster, parent, wal_command = source_cluster
    dsn = cluster.dsn()
    manager = BackupManager(tmp_path / "catalog.db", tmp_path / "store")
    manager.configure("pg", PostgresPITR(dsn, archive=parent / "archive", wal_command=wal_command))
    manager.create("pg")
    _query(dsn, "CREATE TABLE t (id int)")
    _query(dsn, "INSERT INTO t SELECT generate_series(1, 50)")
    _wait_archived(dsn)
    result = manager.drill("pg", queries=["SELECT count(*) = 50 FROM t"])
    assert result.ok, result.error
    assert [c.name for c in result.checks][:2] == ["restore", "recovered server answers"]
    assert result.rpo_seconds is not None
    assert 0 <= result.rpo_seconds < 600
    assert result.rto_seconds is not None
    assert result.rto_seconds > 0
    leftovers = [p for p in Path("/tmp").glob("buttress-pitr-*") if p != parent]
    assert leftovers == []  # the scratch cluster was stopped and its directory removed
