"""Schedulers sharing a store run each periodic job on one process: the leader's."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from bench._fleetproc import delete_keys

from buttress.errors import ConfigError
from buttress.ops.scheduler import JobRun, Scheduler
from buttress.stores import AsyncMemoryStore, AsyncRedisStore
from buttress.testing import ManualClock
from tests.servers import redis_url


def recorder(runs: list[tuple[str, float]], who: str) -> Callable[[], None]:
    """A job that notes who ran it, and when (monotonic)."""

    def job() -> None:
        runs.append((who, time.monotonic()))

    return job


def ticking(
    runs: list[tuple[str, float]], who: str, *, interval: float, jitter: float, **options: Any
) -> Scheduler:
    """A scheduler (``options``) with one job, ``tick``, noting in ``runs`` that ``who`` ran it."""
    scheduler = Scheduler(**options)
    scheduler.add("tick", recorder(runs, who), interval=interval, jitter=jitter)
    return scheduler


async def until(check: Callable[[], bool], within: float = 3.0) -> None:
    """Poll ``check`` in 10 ms steps; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {within}s")
        await asyncio.sleep(0.01)


class Partition:
    """A TCP proxy in front of Redis; ``cut()`` drops every connection and refuses new ones."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.db = parts.path
        self.writers: list[asyncio.StreamWriter] = []
        self.pipes: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}{self.db}"

    async def __aexit__(self, *exc: object) -> None:
        await self.cut()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, up_writer]
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self.pipes.add(task)
            task.add_done_callback(self.pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()

    async def cut(self) -> None:
        """The network between the client and Redis fails."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for task in list(self.pipes):
            task.cancel()
        await asyncio.gather(*self.pipes, return_exceptions=True)
        for writer in self.writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        self.writers.clear()


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix on the test Redis, deleted afterwards."""
    url = redis_url()
    prefix = f"buttress-test:sched-{time.monotonic_ns()}:"
    yield prefix
    delete_keys(url, prefix)


def test_without_a_store_every_process_leads() -> None:
    """No store: is_leader is always true and there is no lock."""
    scheduler = Scheduler()
    assert scheduler.is_leader
    assert scheduler.leader_lock is None


def test_bad_lock_options() -> None:
    """A non-positive lock_ttl or an empty lock_name is a ConfigError naming the option."""
    store = AsyncMemoryStore()
    with pytest.raises(ConfigError, match="lock_ttl"):
        Scheduler(store=store, lock_ttl=0)
    with pytest.raises(ConfigError, match="lock_name"):
        Scheduler(store=store, lock_name="")


async def test_only_the_leader_runs_jobs_on_a_manual_clock() -> None:
    """Two schedulers on one store: the first to start leads and runs; the other never does."""
    # Every sleep on a ManualClock moves the one shared time: a long ttl outlasts them all.
    clock = ManualClock()
    store = AsyncMemoryStore(clock=clock)
    runs: list[tuple[str, float]] = []
    a = ticking(runs, "a", interval=1, jitter=0, clock=clock, store=store, lock_ttl=1000)
    b = ticking(runs, "b", interval=1, jitter=0, clock=clock, store=store, lock_ttl=1000)
    a.start()
    for _ in range(5):
        await asyncio.sleep(0)
    b.start()
    for _ in range(40):
        await asyncio.sleep(0)
    await a.stop()
    await b.stop()
    assert {who for who, _ in runs} == {"a"}
    assert a.get("tick").runs >= 3
    assert b.get("tick").runs == 0


async def test_a_manual_run_happens_on_a_follower() -> None:
    """``run`` by hand runs on the process asked, even when it does not lead."""
    clock = ManualClock()
    store = AsyncMemoryStore(clock=clock)
    runs: list[tuple[str, float]] = []
    leader = Scheduler(clock=clock, store=store, lock_ttl=1000)
    follower = Scheduler(clock=clock, store=store, lock_ttl=1000)
    follower.add("tick", recorder(runs, "b"), interval=1)
    leader.start()
    for _ in range(3):
        await asyncio.sleep(0)
    follower.start()
    for _ in range(3):
        await asyncio.sleep(0)
    assert leader.is_leader
    assert not follower.is_leader
    run: JobRun = await follower.run("tick")
    await leader.stop()
    await follower.stop()
    assert run.outcome == "ok"
    assert ("b", runs[-1][1]) == runs[-1]


async def test_redis_one_runner_and_takeover_after_the_ttl(prefix: str) -> None:
    """Real Redis: one scheduler runs the job; its network fails; the other takes over after the
    ttl, and their runs never interleave."""
    url = redis_url()
    runs: list[tuple[str, float]] = []
    partition = Partition(url)
    async with (
        partition as cut_url,
        AsyncRedisStore(cut_url, prefix=prefix, timeout=0.2) as store_a,
        AsyncRedisStore(url, prefix=prefix, timeout=0.2) as store_b,
    ):
        a = ticking(runs, "a", interval=0.02, jitter=0.1, store=store_a, lock_ttl=0.3)
        b = ticking(runs, "b", interval=0.02, jitter=0.1, store=store_b, lock_ttl=0.3)
        try:
            a.start()
            await until(lambda: a.is_leader)
            b.start()
            await until(lambda: a.get("tick").runs >= 5)
            assert b.get("tick").runs == 0
            assert not b.is_leader
            await partition.cut()  # a cannot renew, and must stop at its lease's end
            cut = time.monotonic()
            await until(lambda: b.get("tick").runs >= 5)
            assert not a.is_leader
            a_runs = [t for who, t in runs if who == "a"]
            b_runs = [t for who, t in runs if who == "b"]
            assert max(a_runs) < min(b_runs)  # never both at once
            assert min(b_runs) > cut
            settled = a.get("tick").runs
            await until(lambda: b.get("tick").runs >= 8)
            assert a.get("tick").runs == settled  # the cut-off leader runs nothing more
        finally:
            await a.stop()
            await b.stop()


async def test_redis_a_stopped_leader_hands_over(prefix: str) -> None:
    """Real Redis: stopping the leader releases the lock and the other scheduler takes over."""
    url = redis_url()
    runs: list[tuple[str, float]] = []
    async with (
        AsyncRedisStore(url, prefix=prefix, timeout=1.0) as store_a,
        AsyncRedisStore(url, prefix=prefix, timeout=1.0) as store_b,
    ):
        a = ticking(runs, "a", interval=0.02, jitter=0, store=store_a, lock_ttl=0.3)
        b = ticking(runs, "b", interval=0.02, jitter=0, store=store_b, lock_ttl=0.3)
        try:
            a.start()
            await until(lambda: a.is_leader)
            b.start()
            await until(lambda: a.get("tick").runs >= 3)
            await a.stop()
            stopped = time.monotonic()
            await until(lambda: b.get("tick").runs >= 3)
            assert b.is_leader
            assert all(t < stopped for who, t in runs if who == "a")
        finally:
            await a.stop()
            await b.stop()
