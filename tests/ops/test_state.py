"""The SQLite state store and the audit log on it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from buttress.errors import StoreError
from buttress.ops import AuditLog, StateStore
from buttress.ops._state import split_statements
from buttress.testing import ManualClock


def test_file_is_created_on_first_use_with_wal(tmp_path: Path) -> None:
    """Nothing is written until first use; then dir 0700, file 0600, WAL journal."""
    state_dir = tmp_path / "state"
    store = StateStore.in_directory(state_dir)
    assert not state_dir.exists()
    store.put("ns", "k", {"a": 1})
    db = state_dir / "buttress.db"
    assert db.is_file()
    assert stat.S_IMODE(os.stat(state_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    store.close()
    reopened = StateStore.in_directory(state_dir)
    assert reopened.get("ns", "k") == {"a": 1}
    reopened.close()


def test_memory_store_and_key_values() -> None:
    """':memory:' keeps nothing on disk; put/get/delete/items work on JSON values."""
    store = StateStore.in_directory(":memory:")
    assert store.in_memory
    store.put("flags", "b", [1, 2])
    store.put("flags", "a", "x")
    store.put("flags", "a", "y")
    store.put("other", "a", None)
    assert store.items("flags") == {"a": "y", "b": [1, 2]}
    assert store.get("flags", "missing", 7) == 7
    assert store.delete("flags", "a") is True
    assert store.delete("flags", "a") is False
    store.close()
    assert store.get("flags", "b") is None  # reopened, empty: memory lives until closed
    store.close()


def test_closed_file_store_reopens_with_its_data(tmp_path: Path) -> None:
    """close() releases the file; the next use reopens it with the data and schema in place."""
    store = StateStore(tmp_path / "s.db")
    log = AuditLog(store)
    log.append(actor="a", action="x", target="t")
    store.close()
    assert [entry.action for entry in log.page()] == ["x"]
    store.close()


def test_migrations_run_once_by_version_number() -> None:
    """Each component's steps run once, in order; a later step is applied on the next migrate."""
    store = StateStore()
    ran: list[int] = []
    steps: list[str | object] = [
        "CREATE TABLE jobs (name TEXT); CREATE INDEX jobs_name ON jobs (name);",
        lambda conn: ran.append(1),
    ]
    assert store.migrate("scheduler", steps) == 2  # type: ignore[arg-type]
    assert store.migrate("scheduler", steps) == 2  # type: ignore[arg-type]
    assert ran == [1]
    steps.append("ALTER TABLE jobs ADD COLUMN last REAL")
    store.migrate("scheduler", steps)  # type: ignore[arg-type]
    assert store.version("scheduler") == 3
    assert store.version("unknown") == 0
    store.register("later", ["CREATE TABLE later (x)"])  # applied at once: the store is open
    assert store.version("later") == 1
    store.execute("INSERT INTO jobs (name, last) VALUES (?, ?)", ("health", 1.5))
    assert store.query("SELECT name, last FROM jobs") == [("health", 1.5)]
    with pytest.raises(StoreError, match="newer than this code"):
        store.migrate("scheduler", steps[:1])  # type: ignore[arg-type]
    store.close()


def test_failed_migration_step_rolls_back() -> None:
    """A step that fails leaves neither its changes nor a version bump."""
    store = StateStore()
    with pytest.raises(StoreError, match="broken migration step 1 failed: no such table"):
        store.migrate("broken", ["CREATE TABLE t (x); INSERT INTO nowhere VALUES (1);"])
    assert store.version("broken") == 0
    with pytest.raises(StoreError, match="no such table"):
        store.query("SELECT * FROM t")
    assert store.query("SELECT name FROM sqlite_master WHERE name = 't'") == []
    with store.transaction() as conn:
        conn.execute("CREATE TABLE t (x)")
    assert store.query("SELECT count(*) FROM t") == [(0,)]
    store.close()


def test_split_statements_keeps_triggers_and_comments_whole() -> None:
    """Semicolons inside a trigger body or a comment do not split a statement."""
    script = (
        "CREATE TABLE a (x); -- note; here\nCREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;"
    )
    assert split_statements(script) == [
        "CREATE TABLE a (x);",
        "-- note; here\nCREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;",
    ]


def test_unwritable_state_dir_raises_store_error(tmp_path: Path) -> None:
    """A state_dir that cannot be created gives a StoreError naming the path."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = StateStore.in_directory(blocker / "sub")
    with pytest.raises(StoreError, match="cannot open"):
        store.get("a", "b")


def test_audit_log_appends_and_pages() -> None:
    """Entries come back newest first, with before/after, and page by id; reasons are redacted."""
    clock = ManualClock(wall=1_700_000_000.0)
    log = AuditLog(StateStore(), clock=clock)
    for index in range(5):
        clock.advance(1)
        log.append(
            actor="alice",
            action="circuit_breaker.reset",
            target=f"b{index}",
            before={"state": "open"},
            after={"state": "closed"},
            client="10.0.0.1",
            reason="see postgresql://u:hunter22@db/x",
        )
    newest = log.page(limit=2)
    assert [entry.target for entry in newest] == ["b4", "b3"]
    older = log.page(limit=10, before=newest[-1].id)
    assert [entry.target for entry in older] == ["b2", "b1", "b0"]
    data = newest[0].to_dict()
    assert data["before"] == {"state": "open"}
    assert data["after"] == {"state": "closed"}
    assert data["time"] == "2023-11-14T22:13:25.000Z"
    assert data["reason"] == "see postgresql://u:***@db/x"
    assert data["client"] == "10.0.0.1"
