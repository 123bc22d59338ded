"""Rate limits on Redis: sequential decisions against limits' Redis fixed window, 64 asyncio
tasks sharing round trips, and lease mode with its measured over-admission.

Needs the Redis at ``BUTTRESS_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``); keys go
under a prefix of the run's own and are deleted after. Every row is an always-allowed decision
on one key (``"k"``); ``verify`` checks that nothing was refused. The 64-task row runs 64 tasks
that together make the sample's ``n`` decisions, so its ns/decision is wall time / ``n``.

Lease mode is timed on a bucket of 100,000 refilled at 5,000,000/s (blocks of at most 1,000
units, 1%: a refill every thousand decisions or so). Its over-admission is measured in the same
run on a bucket that binds (burst 20,000, 2,000/s, blocks of at most 200): one process hammers
it for a while and the admitted requests' times are checked against the bucket's definition
(in any interval of t seconds at most ``burst + rate * t``); the excess is reported as a share
of the burst, target <= 1%. Four processes (four limiters) are measured too, for the documented
bound of four blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

from bench._fleetproc import delete_keys
from bench._harness import Contender, Ctx, Prepared, Target, TimingScenario, async_calls, sync_calls

__all__ = ["OVER_ADMISSION_TARGET", "SCENARIOS", "over_admission"]

URL = os.environ.get("BUTTRESS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
HUGE = 10**9
TASKS = 64
OVER_ADMISSION_TARGET = 0.01
_RUN: dict[str, Any] = {}
"""The run's prefix and measurements (filled by the scenario's context and the verifiers)."""


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(what)


def _prefix() -> str:
    return str(_RUN.setdefault("prefix", f"buttress-bench:{uuid.uuid4().hex[:10]}:"))


def _limiter(algorithm: Any, *, lease: bool = False, name: str | None = None) -> Any:
    from buttress.ratelimit import RateLimiter
    from buttress.stores import RedisStore

    store = RedisStore(URL, prefix=_prefix())
    name = name or f"bench-{uuid.uuid4().hex[:6]}"
    limiter = RateLimiter(algorithm, name=name, store=store, lease=lease)
    _RUN.setdefault("closers", []).extend([limiter.close, store.close])
    return limiter


def _never_refused(limiter: Any) -> None:
    snap = limiter.snapshot()
    _check(snap.refused == 0 and snap.allowed > 0 and not snap.degraded, f"snapshot {snap}")


def _sequential(ctx: Ctx) -> Prepared:
    from buttress.ratelimit import TokenBucket

    limiter = _limiter(TokenBucket(HUGE, HUGE))
    return Prepared(sync_calls(partial(limiter.allow, "k")), lambda: _never_refused(limiter))


def _limits_fixed(ctx: Ctx) -> Prepared:
    import limits
    from limits.storage import RedisStorage
    from limits.strategies import FixedWindowRateLimiter

    storage = RedisStorage(URL, key_prefix=f"{_prefix()}limits")
    limiter = FixedWindowRateLimiter(storage)
    item = limits.parse(f"{HUGE}/hour")
    hit = partial(limiter.hit, item, "k")
    return Prepared(sync_calls(hit), lambda: _check(hit(), "limits refused"))


def _async_sequential(ctx: Ctx) -> Prepared:
    from buttress.ratelimit import TokenBucket

    limiter = _limiter(TokenBucket(HUGE, HUGE))
    _RUN.setdefault("async", []).append(limiter)
    _RUN["loop"] = ctx.loop
    return Prepared(async_calls(limiter.aallow, "k"), lambda: _never_refused(limiter))


def _tasks(ctx: Ctx) -> Prepared:
    from buttress.ratelimit import TokenBucket

    limiter = _limiter(TokenBucket(HUGE, HUGE))
    _RUN.setdefault("async", []).append(limiter)
    _RUN["loop"] = ctx.loop
    decide = limiter.aallow

    async def worker(count: int) -> None:
        for _ in range(count):
            await decide("k")

    async def sample(n: int) -> int:
        share, extra = divmod(n, TASKS)
        counts = [share + (1 if i < extra else 0) for i in range(TASKS)]
        t0 = time.perf_counter_ns()
        await asyncio.gather(*(worker(c) for c in counts if c))
        return time.perf_counter_ns() - t0

    return Prepared(sample, lambda: _never_refused(limiter))


def _lease(ctx: Ctx) -> Prepared:
    from buttress.ratelimit import TokenBucket

    limiter = _limiter(TokenBucket(5_000_000, 100_000), lease=True)

    def verify() -> None:
        _never_refused(limiter)
        seconds = 0.3 if ctx.config.quick else 2.0
        one = over_admission(1, seconds)
        four = over_admission(4, seconds)
        _RUN["over_admission"] = {"1 process": one, "4 processes": four}
        _check(one["share"] <= OVER_ADMISSION_TARGET, f"over-admission {one}")
        _check(four["excess"] <= four["bound"], f"over-admission of 4 processes {four}")

    return Prepared(sync_calls(partial(limiter.allow, "k")), verify)


def over_admission(processes: int, seconds: float) -> dict[str, float]:
    """Hammer a binding lease-mode bucket from ``processes`` limiters for ``seconds``: the
    worst excess over ``burst + rate * t`` in any interval, absolute and as a share of burst."""
    from buttress.ratelimit import TokenBucket

    burst, rate = 20_000, 2_000.0
    bucket = TokenBucket(rate, burst)
    name = f"bench-over-{uuid.uuid4().hex[:6]}"
    limiters = [_limiter(bucket, lease=True, name=name) for _ in range(processes)]
    times: list[float] = []
    clock = time.monotonic
    end = clock() + seconds
    allows = [limiter.allow for limiter in limiters]
    while clock() < end:
        for allow in allows:
            if allow("hot"):
                times.append(clock())
    worst, lowest = 0.0, float("inf")
    for j, t in enumerate(times):
        lowest = min(lowest, j - rate * t)
        worst = max(worst, (j - rate * t) - lowest + 1 - burst)
    block = limiters[0]._book.max_block
    return {
        "admitted": float(len(times)),
        "excess": worst,
        "share": worst / burst,
        "bound": processes * block,
    }


@contextlib.contextmanager
def _context() -> Iterator[dict[str, Any]]:
    info: dict[str, Any] = {}
    _RUN.clear()
    try:
        yield info
    finally:
        loop = _RUN.get("loop")
        for limiter in _RUN.get("async", []):
            with contextlib.suppress(Exception):
                loop.run_until_complete(limiter.aclose())
        for close in _RUN.get("closers", []):
            with contextlib.suppress(Exception):
                close()
        if "over_admission" in _RUN:
            info["over_admission"] = _RUN["over_admission"]
        delete_keys(URL, _prefix())
        _RUN.clear()


REDIS = TimingScenario(
    name="ratelimit.redis",
    title="rate limit on Redis, always-allowed decision, one key (one client; 64 tasks; lease)",
    contenders=(
        Contender(
            "buttress Redis sequential",
            "buttress",
            "RateLimiter(TokenBucket, store=RedisStore).allow(k)",
            _sequential,
        ),
        Contender(
            "limits Redis FixedWindow",
            "limits",
            "FixedWindowRateLimiter(RedisStorage).hit",
            _limits_fixed,
        ),
        Contender(
            "buttress Redis async sequential",
            "buttress",
            "await limiter.aallow(k), one task",
            _async_sequential,
            True,
        ),
        Contender(
            "buttress Redis 64 tasks",
            "buttress",
            "await limiter.aallow(k) from 64 tasks at once",
            _tasks,
            True,
        ),
        Contender(
            "buttress Redis lease",
            "buttress",
            "RateLimiter(..., store=RedisStore, lease=True).allow(k)",
            _lease,
        ),
    ),
    targets=(
        Target("buttress Redis sequential", "limits Redis FixedWindow", 1 / 1.15),
        Target("buttress Redis 64 tasks", "buttress Redis sequential", 1 / 5),
        Target("buttress Redis lease", "buttress Redis sequential", 1 / 10),
        Target("buttress Redis 64 tasks", "buttress Redis async sequential", None),
    ),
    unit="decision",
    notes=(
        "ratios are of time per decision: 0.87 is 1.15x the peer's decisions/s, 0.2 is 5x",
        "lease: bucket 100,000 at 5e6/s, blocks <= 1,000 (1%); its over-admission is measured"
        " on a binding bucket in verify() and reported under info (target <= 1% of the burst)",
    ),
    context=_context,
)

SCENARIOS = (REDIS,)
