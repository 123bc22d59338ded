"""The memory and SQLite backends beyond the contract: files, locks, clocks, bounded memory."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from buttress.errors import StoreError
from buttress.stores import AsyncSQLiteStore, MemoryStore, SQLiteStore, store_from_url
from buttress.testing import ManualClock
from tests.stores.conftest import BACKENDS


def test_sqlite_uses_wal_and_persists_across_reopen(tmp_path) -> None:
    """The file is in WAL mode, and what was written is there after the store is reopened."""
    path = tmp_path / "state.db"
    with SQLiteStore(path) as store:
        store.set("breaker:db", "open")
        store.incr("opened")
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()
    with SQLiteStore(path) as store:
        assert store.get("breaker:db") == b"open"
        assert store.get_counter("opened") == 1


def test_sqlite_write_lock_held_elsewhere_is_a_store_error(tmp_path) -> None:
    """A write waits busy_timeout for another process's lock, then raises StoreError."""
    path = tmp_path / "state.db"
    with SQLiteStore(path, busy_timeout=0.05) as store:
        store.set("k", "v")
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreError, match=r"store incr failed \(sqlite:///.*locked"):
                store.incr("n")
            assert store.get("k") == b"v"  # readers are not blocked in WAL mode
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert store.incr("n") == 1


def test_sqlite_deadlines_are_wall_clock_shared_by_processes(tmp_path) -> None:
    """Expiry is a wall-clock deadline in the file: every store on the host agrees on it."""
    path = tmp_path / "state.db"
    writer_clock, reader_clock = ManualClock(wall=1_000.0), ManualClock(wall=1_005.0)
    with (
        SQLiteStore(path, clock=writer_clock) as writer,
        SQLiteStore(path, clock=reader_clock) as reader,
    ):
        writer.set("lease", "me", ttl=10)
        assert reader.ttl("lease") == pytest.approx(5.0)
        reader_clock.advance(5)
        assert reader.get("lease") is None
        assert writer.get("lease") == b"me"


def test_sqlite_unopenable_file_is_a_store_error(tmp_path) -> None:
    """A path that cannot be opened fails the first operation, not the constructor."""
    store = SQLiteStore(tmp_path / "missing-dir" / "state.db")
    with pytest.raises(StoreError, match=r"set failed .*unable to open"):
        store.set("k", "v")
    store.close()


async def test_sqlite_purge_expired_deletes_dead_rows(tmp_path) -> None:
    """purge_expired removes rows past their deadline and keeps the rest."""
    clock = ManualClock()
    path = tmp_path / "state.db"
    async with AsyncSQLiteStore(path, clock=clock) as store:
        await store.set("short", "v", ttl=1)
        await store.incr("window", 1, ttl=1)
        await store.set("forever", "v")
        clock.advance(1)
        assert await store.purge_expired() == 2
        assert await store.purge_expired() == 0
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM buttress_kv").fetchone()[0] == 1
    raw.close()


def test_memory_drops_expired_keys_without_a_timer() -> None:
    """Idle keys with a ttl are swept by later writes: memory stays bounded, no thread runs."""
    clock = ManualClock()
    store = MemoryStore(clock=clock)
    for i in range(1000):
        store.incr(f"client:{i}", 1, ttl=1)
    assert len(store) == 1000
    clock.advance(1)
    store.set("other", "v")
    assert len(store) == 1
    for _ in range(1000):  # rewriting one key's ttl must not grow the deadline heap forever
        store.set("other", "v", ttl=5)
    assert len(store._data.expiry) < 200
    store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_building_and_using_a_store_starts_no_thread(backend: str, make_store) -> None:
    """No backend starts a background thread, in its constructor or afterwards."""
    before = threading.active_count()
    store = make_store(backend)
    store.set("k", "v", ttl=5)
    assert store.get("k") == b"v"
    assert threading.active_count() == before


def test_memory_stores_share_nothing() -> None:
    """Each memory:// store is its own: two of them share no keys."""
    with store_from_url("memory://") as one, store_from_url("memory://") as two:
        one.set("k", "v")
        assert two.get("k") is None
