"""The SQLite backend's group commit: shared transactions, isolation of failures, closing."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sqlite3
import threading
import time
from typing import Any

import pytest

from buttress.dlq import DeadLetterQueue, SQLiteBackend
from buttress.errors import StoreError

ERROR = ConnectionError("down")


def hold_writer(backend: SQLiteBackend) -> tuple[threading.Event, threading.Thread]:
    """Block the writer thread inside a transaction until the returned event is set."""
    release, entered = threading.Event(), threading.Event()

    def block(conn: sqlite3.Connection) -> None:
        entered.set()
        release.wait(10)

    thread = threading.Thread(target=backend._writer.run, args=(block,))
    thread.start()
    assert entered.wait(10)
    return release, thread


def wait_queued(backend: SQLiteBackend, count: int) -> None:
    """Poll (in short steps) until ``count`` jobs wait for the writer."""
    deadline = time.monotonic() + 10
    while len(backend._writer._queue) < count:
        assert time.monotonic() < deadline, "jobs never queued"
        time.sleep(0.001)


def test_concurrent_adds_share_one_commit(tmp_path) -> None:
    """Adds from 20 threads that arrive while the writer is busy commit in one transaction,
    and every caller gets its own id once that commit is done."""
    backend = SQLiteBackend(tmp_path / "dlq.db")
    with DeadLetterQueue(backend) as dlq:
        dlq.add(0, error=ERROR)  # the writer is running
        before = backend.commits
        release, holder = hold_writer(backend)
        ids: list[str] = []
        threads = [
            threading.Thread(target=lambda n=n: ids.append(dlq.add(n, error=ERROR)))
            for n in range(20)
        ]
        for thread in threads:
            thread.start()
        wait_queued(backend, 20)
        assert ids == []  # nobody returned before the commit
        release.set()
        for thread in [holder, *threads]:
            thread.join(10)
        assert backend.commits == before + 2  # the held round, then all 20 adds in one
        assert len(set(ids)) == 20
        assert sorted(dlq.get(i).payload for i in ids) == list(range(20))


async def test_async_adds_share_one_commit(tmp_path) -> None:
    """Adds from 32 asyncio tasks queued behind a busy writer commit together."""
    backend = SQLiteBackend(tmp_path / "dlq.db")
    with DeadLetterQueue(backend) as dlq:
        await dlq.aadd(0, error=ERROR)
        before = backend.commits
        release, holder = hold_writer(backend)
        tasks = [asyncio.create_task(dlq.aadd(n, error=ERROR)) for n in range(32)]
        while len(backend._writer._queue) < 32:
            await asyncio.sleep(0.001)
        release.set()
        ids = await asyncio.gather(*tasks)
        holder.join(10)
        assert backend.commits == before + 2
        assert len(set(ids)) == 32


def test_a_failing_job_does_not_undo_the_others(tmp_path) -> None:
    """A job that fails inside a shared transaction is rolled back alone."""
    backend = SQLiteBackend(tmp_path / "dlq.db")
    with DeadLetterQueue(backend) as dlq:
        dlq.add(0, error=ERROR)
        release, holder = hold_writer(backend)
        errors: list[BaseException] = []

        def broken(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM buttress_dlq")
            raise RuntimeError("job bug")

        def run_broken() -> None:
            try:
                backend._writer.run(broken)
            except RuntimeError as exc:
                errors.append(exc)

        ids: list[str] = []
        threads = [
            threading.Thread(target=run_broken),
            threading.Thread(target=lambda: ids.append(dlq.add(1, error=ERROR))),
        ]
        for thread in threads:
            thread.start()
        wait_queued(backend, 2)
        release.set()
        for thread in [holder, *threads]:
            thread.join(10)
        assert [str(e) for e in errors] == ["job bug"]
        assert dlq.stats().total == 2


def test_closed_backend_refuses(tmp_path) -> None:
    """After close(), adds and reads raise StoreError; close() is idempotent."""
    dlq = DeadLetterQueue(f"sqlite:///{tmp_path}/dlq.db")
    dlq.add(1, error=ERROR)
    dlq.close()
    dlq.close()
    with pytest.raises(StoreError):
        dlq.add(2, error=ERROR)
    with pytest.raises(StoreError):
        dlq.stats()


def test_two_backends_share_one_file(tmp_path) -> None:
    """Two backends on one file (as two processes would be) see each other's records."""
    path = tmp_path / "shared.db"
    with DeadLetterQueue(SQLiteBackend(path)) as one, DeadLetterQueue(SQLiteBackend(path)) as two:
        a = one.add("a", error=ERROR)
        b = two.add("b", error=ERROR)
        assert a != b
        assert one.get(b).payload == "b"
        assert two.get(a).payload == "a"


def test_memory_database_reads_through_the_writer() -> None:
    """sqlite:///:memory: keeps everything in one connection: reads see the writes."""
    with DeadLetterQueue("sqlite:///:memory:") as dlq:
        id = dlq.add({"x": 1}, error=ERROR)
        assert dlq.get(id).payload == {"x": 1}
        assert dlq.backend.url == "sqlite:///:memory:"
        assert "SQLiteBackend" in repr(dlq.backend)


def _add_in_child(dlq: DeadLetterQueue, results: Any) -> None:
    results.put(dlq.add("from the child", error=ERROR))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_writer(tmp_path) -> None:
    """A queue used before a fork still works in the child (its own writer and connections)."""
    context = multiprocessing.get_context("fork")
    with DeadLetterQueue(SQLiteBackend(tmp_path / "dlq.db")) as dlq:
        parent = dlq.add("from the parent", error=ERROR)
        dlq.get(parent)  # the reader connection is open too
        results = context.Queue()
        child = context.Process(target=_add_in_child, args=(dlq, results))
        child.start()
        id = results.get(timeout=20)
        child.join(20)
        results.close()
        results.join_thread()
        assert child.exitcode == 0
        assert dlq.get(id).payload == "from the child"
        assert dlq.add("parent again", error=ERROR) not in (parent, id)
