"""The dead letter queue: batch adds, concurrent durable adds, Redis adds, worker throughput.

``dlq.sqlite.add_many``: ``dlq.add_many`` of 500 records (payloads encoded by buttress) against
raw ``sqlite3`` ``executemany`` of the same records, already JSON-encoded, into a table of the
same schema, in one transaction; both files WAL with ``synchronous=FULL``. Target: buttress
>= 0.5 of raw's throughput (ns per record ratio <= 2).

``dlq.sqlite.concurrent``: single durable adds (each on disk when it returns) from 32 asyncio
tasks (target >= 30,000 per second: <= 33,333 ns per add), from 32 threads (reported), and the
baseline: one durable autocommit ``INSERT`` at a time on one connection (reported with the
ratio).

``dlq.redis.add_many``: ``dlq.add_many`` of 500 records on Redis (one pipelined MULTI/EXEC of
Lua calls) against a raw pipeline of 500 ``XADD`` of the same, already-encoded payloads.
Target: buttress >= 0.7 of raw's throughput (ratio <= 1/0.7). Needs the Redis at
``BUTTRESS_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``); keys are deleted after.

``dlq.worker``: a worker with a no-op handler on SQLite, batches of 500 (each batch's outcomes
stored with the next lease in one commit): the time to process ``n`` due messages (added before
the clock starts). Target: >= 10,000 messages per second (<= 100,000 ns per message).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench._harness import Contender, Ctx, Prepared, Target, TimingScenario

__all__ = ["SCENARIOS"]

BATCH = 500
WORKER_BATCH = 500
ROUND = 64
"""Adds per loop turn of the concurrent scenario: 2 from each of the 32 tasks or threads."""
WORKER_ROUND = 1000
"""Messages per loop turn of the worker scenario."""
TASKS = 32
ERROR = ConnectionError("smtp relay refused the connection")
_state: dict[str, Any] = {}


def _payload(n: int) -> dict[str, Any]:
    return {"order": n, "email": f"customer{n}@example.com", "items": [1, 2, 3], "total": 12.5}


PAYLOADS = [_payload(n) for n in range(BATCH)]


@contextmanager
def _workdir() -> Iterator[dict[str, Any]]:
    """A temporary folder for the scenario's databases, removed after it."""
    folder = Path(tempfile.mkdtemp(prefix="buttress-bench-dlq-"))
    _state["dir"] = folder
    info: dict[str, Any] = {}
    _state["info"] = info
    try:
        yield info
    finally:
        for dlq in _state.pop("close", []):
            dlq.close()
        shutil.rmtree(folder, ignore_errors=True)


def _db(name: str) -> Path:
    folder: Path = _state["dir"]
    return folder / f"{name}-{uuid.uuid4().hex[:6]}.db"


def _queue(**options: Any) -> Any:
    from buttress.dlq import DeadLetterQueue, SQLiteBackend

    dlq = DeadLetterQueue(SQLiteBackend(_db("buttress")), **options)
    _state.setdefault("close", []).append(dlq)
    return dlq


def _raw_connection() -> sqlite3.Connection:
    from buttress.dlq._sqlite_sql import SCHEMA

    conn = sqlite3.connect(_db("raw"), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.executescript(SCHEMA)
    return conn


def _raw_rows() -> list[tuple[Any, ...]]:
    """The records buttress writes for PAYLOADS, with their payloads already JSON."""
    from buttress.dlq import Classification, ErrorInfo
    from buttress.dlq._records import Attempt, encode_history

    now = time.time()
    error = ErrorInfo.of(ERROR)
    history = encode_history([Attempt(0, now, error.type, error.message, Classification.TRANSIENT)])
    return [
        (
            "q",
            json.dumps(p, separators=(",", ":")),
            None,
            None,
            error.type,
            error.message,
            error.traceback,
            "transient",
            history,
            now,
            now,
            now + 60,
            5,
            0,
            "pending",
            now,
            None,
            "",
        )
        for p in PAYLOADS
    ]


RAW_INSERT = (
    "INSERT INTO buttress_dlq (queue, payload, headers, key, error_type, error_message,"
    " traceback, classification, history, first_failed_at, last_failed_at, due_at,"
    " max_attempts, attempts, status, updated_at, lease, note)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


# -- dlq.sqlite.add_many -----------------------------------------------------------------------


def _b_add_many(ctx: Ctx) -> Prepared:
    dlq = _queue()
    add_many = dlq.add_many

    def sample(n: int) -> int:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            add_many(PAYLOADS, error=ERROR, queue="q")
        return time.perf_counter_ns() - t0

    return Prepared(sample)


def _raw_executemany(ctx: Ctx) -> Prepared:
    conn = _raw_connection()
    rows = _raw_rows()

    def sample(n: int) -> int:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(RAW_INSERT, rows)
            conn.execute("COMMIT")
        return time.perf_counter_ns() - t0

    return Prepared(sample)


ADD_MANY = TimingScenario(
    name="dlq.sqlite.add_many",
    title=f"SQLite: add_many of {BATCH} records vs raw executemany in one transaction",
    contenders=(
        Contender("buttress add_many", "buttress", f"dlq.add_many({BATCH} payloads)", _b_add_many),
        Contender(
            "sqlite3 executemany", "python", "BEGIN; executemany(encoded); COMMIT", _raw_executemany
        ),
    ),
    targets=(Target("buttress add_many", "sqlite3 executemany", 2.0),),
    unit="record",
    ops=BATCH,
    notes=("WAL, synchronous=FULL for both; same schema and indexes; ratio <= 2 is >= 0.5x",),
    context=_workdir,
)


# -- dlq.sqlite.concurrent ---------------------------------------------------------------------


def _spread(n: int, workers: int) -> list[int]:
    parts = min(n, workers)
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def _b_tasks(ctx: Ctx) -> Prepared:
    dlq = _queue()
    aadd = dlq.aadd
    backend = dlq.backend

    async def task(count: int) -> None:
        for i in range(count):
            await aadd(PAYLOADS[i % BATCH], error=ERROR, queue="q")

    async def sample(n: int) -> int:
        commits = backend.commits
        t0 = time.perf_counter_ns()
        await asyncio.gather(*(task(c) for c in _spread(n * ROUND, TASKS)))
        elapsed = time.perf_counter_ns() - t0
        adds_per_commit = n * ROUND / max(1, backend.commits - commits)
        _state["info"]["adds_per_commit_tasks"] = round(adds_per_commit, 1)
        return elapsed

    return Prepared(sample)


def _b_threads(ctx: Ctx) -> Prepared:
    dlq = _queue()
    add = dlq.add
    pool = ThreadPoolExecutor(TASKS)
    _state.setdefault("close", []).append(_PoolCloser(pool))

    def work(count: int) -> None:
        for i in range(count):
            add(PAYLOADS[i % BATCH], error=ERROR, queue="q")

    def sample(n: int) -> int:
        t0 = time.perf_counter_ns()
        for future in [pool.submit(work, c) for c in _spread(n * ROUND, TASKS)]:
            future.result()
        return time.perf_counter_ns() - t0

    return Prepared(sample)


class _PoolCloser:
    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool

    def close(self) -> None:
        self.pool.shutdown()


def _raw_autocommit(ctx: Ctx) -> Prepared:
    conn = _raw_connection()
    rows = _raw_rows()

    def sample(n: int) -> int:
        t0 = time.perf_counter_ns()
        for i in range(n * ROUND):
            conn.execute(RAW_INSERT, rows[i % BATCH])
        return time.perf_counter_ns() - t0

    return Prepared(sample)


CONCURRENT = TimingScenario(
    name="dlq.sqlite.concurrent",
    title=f"SQLite: single durable adds from {TASKS} tasks / threads vs one autocommit at a time",
    contenders=(
        Contender(
            f"buttress {TASKS} tasks", "buttress", "await dlq.aadd(...) x 32 tasks", _b_tasks, True
        ),
        Contender(f"buttress {TASKS} threads", "buttress", "dlq.add(...) x 32 threads", _b_threads),
        Contender(
            "sqlite3 autocommit", "python", "conn.execute(INSERT) one at a time", _raw_autocommit
        ),
    ),
    targets=(
        Target(f"buttress {TASKS} tasks", None, 1e9 / 30_000),
        Target(f"buttress {TASKS} tasks", "sqlite3 autocommit", None),
        Target(f"buttress {TASKS} threads", "sqlite3 autocommit", None),
    ),
    unit="add",
    ops=ROUND,
    notes=(
        "every add is durable (committed with synchronous=FULL) when it returns",
        "target: 32 tasks >= 30,000 adds/s, i.e. <= 33,333 ns per add",
    ),
    context=_workdir,
)


# -- dlq.redis.add_many ------------------------------------------------------------------------


@contextmanager
def _redis_keys() -> Iterator[dict[str, Any]]:
    prefix = f"buttress-bench:{uuid.uuid4().hex[:8]}:"
    _state["prefix"] = prefix
    try:
        yield {}
    finally:
        from tests.servers import REDIS_URL
        from tests.stores.conftest import delete_redis_keys

        for dlq in _state.pop("close", []):
            dlq.close()
        delete_redis_keys(REDIS_URL, prefix)


def _b_redis(ctx: Ctx) -> Prepared:
    from tests.servers import redis_url

    from buttress.dlq import DeadLetterQueue, RedisBackend

    dlq = DeadLetterQueue(RedisBackend(redis_url(), prefix=_state["prefix"]))
    _state.setdefault("close", []).append(dlq)
    add_many = dlq.add_many

    def sample(n: int) -> int:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            add_many(PAYLOADS, error=ERROR, queue="q")
        return time.perf_counter_ns() - t0

    return Prepared(sample)


def _raw_xadd(ctx: Ctx) -> Prepared:
    import redis
    from tests.servers import redis_url

    client = redis.Redis.from_url(redis_url())
    _state.setdefault("close", []).append(client)
    stream = f"{_state['prefix']}raw-stream"
    encoded = [json.dumps(p, separators=(",", ":")) for p in PAYLOADS]

    def sample(n: int) -> int:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            pipe = client.pipeline(transaction=False)
            for payload in encoded:
                pipe.xadd(stream, {"payload": payload})
            pipe.execute()
        return time.perf_counter_ns() - t0

    return Prepared(sample)


REDIS = TimingScenario(
    name="dlq.redis.add_many",
    title=f"Redis: add_many of {BATCH} records vs a raw pipeline of {BATCH} XADD",
    contenders=(
        Contender("buttress add_many", "buttress", f"dlq.add_many({BATCH} payloads)", _b_redis),
        Contender(
            "redis-py XADD pipeline", "redis", f"pipeline of {BATCH} XADD (encoded)", _raw_xadd
        ),
    ),
    targets=(Target("buttress add_many", "redis-py XADD pipeline", 1 / 0.7),),
    unit="record",
    ops=BATCH,
    notes=(
        "buttress: one hash per batch (a record moves out once changed), index, counters, in Lua",
        "ratio <= 1.43 is >= 0.7x the raw pipeline's throughput",
    ),
    context=_redis_keys,
)


# -- dlq.worker --------------------------------------------------------------------------------


def _b_worker(ctx: Ctx) -> Prepared:
    from buttress.dlq import Worker
    from buttress.retry import Backoff

    dlq = _queue(backoff=Backoff.constant(0), batch=WORKER_BATCH)
    dlq.handler("q")(lambda letter: None)
    worker = Worker(dlq)

    def sample(n: int) -> int:
        total = n * WORKER_ROUND
        for start in range(0, total, BATCH):
            dlq.add_many(PAYLOADS[: min(BATCH, total - start)], error=ERROR, queue="q")
        t0 = time.perf_counter_ns()
        report = worker.run(until_idle=True)
        elapsed = time.perf_counter_ns() - t0
        if report.resolved != total:
            raise AssertionError(f"resolved {report.resolved} of {total}")
        return elapsed

    return Prepared(sample)


WORKER = TimingScenario(
    name="dlq.worker",
    title=f"worker throughput on SQLite, no-op handler, batches of {WORKER_BATCH}",
    contenders=(
        Contender("buttress worker", "buttress", "Worker(dlq).run(until_idle=True)", _b_worker),
    ),
    targets=(Target("buttress worker", None, 1e9 / 10_000),),
    unit="message",
    ops=WORKER_ROUND,
    notes=("target: >= 10,000 messages/s, i.e. <= 100,000 ns per message",),
    context=_workdir,
)

SCENARIOS = (ADD_MANY, CONCURRENT, REDIS, WORKER)
