"""Crash safety with real processes killed with SIGKILL (children in ``_crash_child.py``)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from buttress.dlq import DeadLetterQueue, RedisBackend, SQLiteBackend, Status
from buttress.retry import Backoff
from tests.servers import redis_url
from tests.stores.conftest import delete_redis_keys

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
    pytest.mark.slow,
]


class Child:
    """A child process whose stdout lines are collected by a thread as they come."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.dlq._crash_child", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout as out:
            for line in out:
                if line.endswith("\n"):  # a line cut by the kill is not a claim
                    self.lines.append(line.rstrip("\n"))

    def wait_for(self, test: Callable[[list[str]], bool], timeout: float = 20.0) -> None:
        """Poll in short steps until ``test(lines)`` holds."""
        deadline = time.monotonic() + timeout
        while not test(self.lines):
            assert self.process.poll() is None or test(self.lines), (
                f"child exited: {self.lines[-3:]}"
            )
            assert time.monotonic() < deadline, f"timed out; last lines {self.lines[-3:]}"
            time.sleep(0.005)

    def kill(self) -> None:
        """SIGKILL the child and collect what it printed before dying."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._reader.join(10)

    def finish(self, timeout: float = 20.0) -> None:
        """Wait for a normal exit."""
        assert self.process.wait(timeout) == 0
        self._reader.join(10)


def test_killed_writer_loses_no_returned_add(tmp_path: Path) -> None:
    """A writer adding from four threads is SIGKILLed at random moments, four times on one
    file: every add that returned (its id printed) is stored with its payload, ids are never
    reused, and the database is intact."""
    path = tmp_path / "crash.db"
    rng = random.Random(os.getpid())
    claimed: dict[str, int] = {}
    for _ in range(4):
        child = Child("writer", f"sqlite:///{path}")
        child.wait_for(lambda lines: "ready" in lines)
        time.sleep(rng.uniform(0.02, 0.15))
        child.kill()
        for line in child.lines:
            if line != "ready":
                id, n = line.split()
                assert id not in claimed, f"id {id} was given twice"
                claimed[id] = int(n)
    assert len(claimed) > 50
    with DeadLetterQueue(SQLiteBackend(path)) as dlq:
        for id, n in claimed.items():
            letter = dlq.get(id)
            assert letter is not None, f"add {id} returned but is gone"
            assert letter.payload == {"n": n}
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()


@pytest.fixture(params=["sqlite", "redis"])
def crash_queue(request: pytest.FixtureRequest, tmp_path: Path):
    """(url, name, prefix) of a queue on each backend; Redis keys are deleted afterwards."""
    name, prefix = "crash", f"buttress-test:{uuid.uuid4().hex[:12]}:"
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/worker.db", name, prefix
        return
    url = redis_url()
    try:
        yield url, name, prefix
    finally:
        delete_redis_keys(url, prefix)


def test_killed_worker_loses_nothing_and_resolves_once(crash_queue) -> None:
    """A worker killed in the middle of its second batch: after its lease ends a second worker
    takes over; every message was processed at least once (those of the killed batch twice)
    and resolved exactly once (the resolutions reported add up to the number of messages)."""
    url, name, prefix = crash_queue
    backend = (
        SQLiteBackend(url.removeprefix("sqlite:///"))
        if url.startswith("sqlite")
        else RedisBackend(url, name=name, prefix=prefix)
    )
    with DeadLetterQueue(backend, name=name, backoff=Backoff.constant(0)) as dlq:
        ids = set(
            dlq.add_many(
                [{"n": n} for n in range(60)], error=ConnectionError("down"), queue="crash"
            )
        )
        first = Child("worker", url, name, prefix)
        first.wait_for(lambda lines: sum(x.startswith("processed") for x in lines) >= 30)
        first.kill()
        second = Child("worker", url, name, prefix)
        second.finish()
        lines = first.lines + second.lines
        processed = [line.split()[1] for line in lines if line.startswith("processed")]
        resolved = sum(int(line.split()[1]) for line in lines if line.startswith("batch"))
        assert set(processed) == ids
        assert len(processed) > len(ids)  # the killed batch ran again
        assert resolved == len(ids)
        stats = dlq.stats()
        assert stats.by_status[Status.RESOLVED.value] == len(ids) == stats.total
        assert all(dlq.get(id).status is Status.RESOLVED for id in ids)
