"""Atomicity under contention: threads, asyncio tasks and (SQLite) separate processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading

import pytest

from buttress.stores import async_store_from_url, store_from_url
from tests.stores._workers import cas_increment, hammer, open_together
from tests.stores.conftest import BACKENDS, backend_url, delete_redis_keys, unique_prefix

THREADS = 8
ROUNDS = 40


@pytest.mark.parametrize("backend", BACKENDS)
def test_threads_lose_no_update(backend: str, make_store) -> None:
    """8 threads racing on incr and on a compare_and_set loop: every increment is counted."""
    store = make_store(backend)
    start = threading.Barrier(THREADS)
    lost: list[int] = []

    def work() -> None:
        start.wait()
        for _ in range(ROUNDS):
            store.incr("incr")
            lost.append(cas_increment(store, "cas"))

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get_counter("incr") == THREADS * ROUNDS
    assert store.get_counter("cas") == THREADS * ROUNDS


@pytest.mark.parametrize("backend", BACKENDS)
async def test_tasks_lose_no_update(backend: str, request: pytest.FixtureRequest) -> None:
    """20 asyncio tasks racing on an async store's incr and compare_and_set: nothing lost."""
    url, prefix = backend_url(backend, request), unique_prefix()

    async def cas_task(store) -> None:
        for _ in range(10):
            while True:
                raw = await store.get("cas")
                await asyncio.sleep(0)  # let another task read the same value
                if await store.compare_and_set("cas", raw, str(int(raw or b"0") + 1)):
                    break
            await store.incr("incr")

    try:
        async with async_store_from_url(url, prefix=prefix) as store:
            await asyncio.gather(*(cas_task(store) for _ in range(20)))
            assert await store.get_counter("cas") == 200
            assert await store.get_counter("incr") == 200
    finally:
        if backend == "redis":
            delete_redis_keys(url, prefix)


def test_sqlite_processes_lose_no_update(tmp_path) -> None:
    """Two processes hammering incr and compare_and_set on one SQLite file: nothing lost."""
    context = multiprocessing.get_context("spawn")
    url, prefix, rounds = f"sqlite:///{tmp_path}/shared.db", unique_prefix(), 500
    start, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=hammer, args=(url, prefix, rounds, start, results)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    spans = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    results.close()
    results.join_thread()
    assert [worker.exitcode for worker in workers] == [0, 0]
    (began_a, ended_a, _), (began_b, ended_b, _) = spans
    assert max(began_a, began_b) < min(ended_a, ended_b), "the two processes must overlap"
    with store_from_url(url, prefix=prefix) as store:
        assert store.get_counter("incr") == 2 * rounds
        assert store.get_counter("cas") == 2 * rounds


def test_processes_opening_new_files_together_all_succeed(tmp_path) -> None:
    """Four processes open each of 25 new SQLite files at the same moment, as a store, a dead
    letter queue, the ops state and a backup catalog: every open works. (SQLite refuses the
    switch to WAL at once, busy timeout or not, while another connection holds the file: before
    buttress retried it, about 7% of such opens failed with "database is locked"; and two
    processes migrating one new ops state both ran its first step.)"""
    context = multiprocessing.get_context("spawn")
    urls = [f"sqlite:///{tmp_path}/new-{i}.db" for i in range(25)]
    start, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=open_together, args=(urls, start, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    failures = [failure for _ in workers for failure in results.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=10)
    results.close()
    results.join_thread()
    assert failures == []
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
