"""SQLite backups are consistent snapshots even while the database is being written."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from buttress.backup import BackupManager, SQLiteDatabase
from buttress.errors import BackupError, ConfigError


def _database(path: Path, rows: int = 200) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER, at REAL)")
    conn.execute("CREATE TABLE ledger (order_id INTEGER, amount INTEGER)")
    with conn:
        for i in range(rows):
            conn.execute("INSERT INTO orders (amount, at) VALUES (?, ?)", (i, 1_699_990_000 + i))
            conn.execute("INSERT INTO ledger VALUES (?, ?)", (i + 1, i))
    conn.close()
    return path


def test_backup_while_written_is_consistent(manager: BackupManager, tmp_path: Path) -> None:
    """Writers keep committing (an order and its ledger line in one transaction) during the
    backup; the restored copy passes integrity_check and every order has its ledger line."""
    db = _database(tmp_path / "app.db")
    manager.configure("app", SQLiteDatabase(db))
    stop = threading.Event()
    written = []

    def writer() -> None:
        conn = sqlite3.connect(db, timeout=10)
        i = 0
        while not stop.is_set():
            with conn:
                cur = conn.execute("INSERT INTO orders (amount, at) VALUES (?, 0)", (i,))
                conn.execute("INSERT INTO ledger VALUES (?, ?)", (cur.lastrowid, i))
            i += 1
            written.append(i)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 50:  # the writer is really running
            stop.wait(0.005)
        backup = manager.create("app")
    finally:
        stop.set()
        thread.join()
    target = tmp_path / "restored"
    manager.restore(backup.id, target)
    conn = sqlite3.connect(target / "app.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    orders, ledger = conn.execute(
        "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM ledger)"
    ).fetchone()
    conn.close()
    assert orders == ledger >= 250
    assert backup.stats["tables"] == 2


def test_verify_deep_and_drill_with_query(manager: BackupManager, tmp_path: Path) -> None:
    """Deep verify runs integrity_check on a scratch copy; a drill runs validation queries and
    measures RPO from a freshness query."""
    manager.configure("app", SQLiteDatabase(_database(tmp_path / "app.db")))
    backup = manager.create("app")
    deep = manager.verify(backup.id, deep=True)
    assert deep.ok
    assert deep.checks[-1].name == "sqlite integrity_check"
    result = manager.drill(
        "app",
        queries=["SELECT count(*) = 200 FROM orders"],
        freshness_query="SELECT max(at) FROM orders",
    )
    assert result.ok, result.error
    assert result.rpo_seconds == pytest.approx(1_700_000_000 - (1_699_990_000 + 199))
    failing = manager.drill("app", queries=["SELECT count(*) > 1000 FROM orders"])
    assert not failing.ok
    assert "checks failed" in (failing.error or "")


def test_restore_refuses_existing_database(manager: BackupManager, tmp_path: Path) -> None:
    """A destination directory already holding files is refused unless forced."""
    db = _database(tmp_path / "app.db")
    manager.configure("app", SQLiteDatabase(db))
    backup = manager.create("app")
    target = tmp_path / "live"
    target.mkdir()
    (target / "app.db").write_text("not a database")
    with pytest.raises(BackupError, match="not empty"):
        manager.restore(backup.id, target)
    manager.restore(backup.id, target, force=True)
    conn = sqlite3.connect(target / "app.db")
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 200
    conn.close()


def test_sqlite_backups_are_full_only(manager: BackupManager, tmp_path: Path) -> None:
    """Asking for an incremental SQLite backup is a configuration error; so is a missing file."""
    manager.configure("app", SQLiteDatabase(_database(tmp_path / "app.db")))
    with pytest.raises(ConfigError, match="kind"):
        manager.create("app", "incremental")
    manager.configure("none", SQLiteDatabase(tmp_path / "nope.db"))
    with pytest.raises(BackupError, match="no such database"):
        manager.create("none")
