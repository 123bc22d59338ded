"""Flags shared by processes: a change reaches the others within a second (real Redis, SQLite)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from buttress.degrade.flags import Flag, FlagStore

ROOT = Path(__file__).resolve().parents[3]
WITHIN = 1.0
"""The issue's bound: a change reaches every process within 1 s."""


def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll ``condition`` every 5 ms for at most ``seconds``; whether it became true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


@pytest.fixture
def two_redis_stores(
    redis_prefix: tuple[str, str], make_flags: Callable[..., FlagStore]
) -> tuple[FlagStore, FlagStore]:
    """Two flag stores with their own Redis connections, syncing every 0.5 s and by pub/sub."""
    url, prefix = redis_prefix
    return (
        make_flags(url, prefix=prefix, sync_interval=0.5, clock=None),
        make_flags(url, prefix=prefix, sync_interval=0.5, clock=None),
    )


def test_redis_change_reaches_the_other_store(
    two_redis_stores: tuple[FlagStore, FlagStore],
) -> None:
    """A flag created, ramped and killed through one store is seen by the other within 1 s."""
    first, second = two_redis_stores
    first.create(Flag("checkout", enabled=True, rollout=0))
    assert wait_until(lambda: "checkout" in second, WITHIN)
    assert not second.enabled("checkout", user="42")
    first.set_rollout("checkout", 100)
    assert wait_until(lambda: second.enabled("checkout", user="42"), WITHIN)
    second.kill("checkout", actor="oncall")
    assert wait_until(lambda: not first.enabled("checkout", user="42"), WITHIN)
    assert [c.actor for c in first.history(limit=1)] == ["oncall"]


def test_redis_change_reaches_another_process(
    redis_prefix: tuple[str, str], make_flags: Callable[..., FlagStore]
) -> None:
    """A second process sees a flag turned on here and answers; each way takes under 1 s."""
    url, prefix = redis_prefix
    flags = make_flags(url, prefix=prefix, sync_interval=0.5, clock=None)
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.degrade.flags._worker", url, prefix],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
        flags.create(Flag("go", enabled=True))
        assert wait_until(lambda: flags.enabled("ack"), 2 * WITHIN)
        assert worker.wait(timeout=10) == 0
    finally:
        worker.kill()
        worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()


def test_sqlite_change_reaches_the_other_store(
    tmp_path: Path, make_flags: Callable[..., FlagStore]
) -> None:
    """On SQLite (no pub/sub) the 0.5 s poll of the change counter brings a change in 1 s."""
    url = f"sqlite:///{tmp_path}/flags.db"
    first = make_flags(url, sync_interval=0.5, clock=None)
    second = make_flags(url, sync_interval=0.5, clock=None)
    first.create(Flag("search", enabled=True))
    assert wait_until(lambda: second.enabled("search"), WITHIN)
    first.disable("search")
    assert wait_until(lambda: not second.enabled("search"), WITHIN)


def test_redis_store_keeps_its_flags(
    redis_prefix: tuple[str, str], make_flags: Callable[..., FlagStore]
) -> None:
    """A store opened later reads the flags, history and version already in Redis."""
    url, prefix = redis_prefix
    make_flags(url, prefix=prefix).create(Flag("f", enabled=True), actor="a", reason="r")
    later = make_flags(url, prefix=prefix)
    assert later.enabled("f")
    assert later.version == 1
    assert [(c.actor, c.reason) for c in later.history()] == [("a", "r")]
