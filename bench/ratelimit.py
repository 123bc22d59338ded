"""Rate limits in memory: the always-allowed decision, sync and async, and memory per key.

Every limiter is configured so that nothing is refused during the run (10^9 units a second,
a burst of 10^9), so the loops measure the admission path; ``verify`` checks that nothing was
refused. One key (``"k"``) for the sync rows, called through ``functools.partial`` for every
library alike; aiolimiter has no keys, so the async rows use buttress's default key.

limits' fixed window over ``MemoryStorage`` is the fastest sync peer and the target's
reference. Its moving window and pyrate-limiter's log buckets keep one entry per admitted
request, so at 10^9/s they grow without bound during a run: pyrate-limiter is measured with its
one-number state bucket (GCRA) instead, for reference.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from bench._harness import Contender, Ctx, Prepared, Target, TimingScenario, async_calls, sync_calls
from bench.memory import MemoryContender, MemoryScenario
from bench.ratelimit_redis import SCENARIOS as REDIS_SCENARIOS

__all__ = ["KEYS", "MEMORY", "MEMORY_SCENARIOS", "SCENARIOS"]

HUGE = 10**9  # units per second and burst: never refused within a run
KEYS = 100_000
BYTES_PER_KEY = 200


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(what)


def _buttress(algorithm: str) -> Any:
    from buttress.ratelimit import GCRA, FixedWindow, RateLimiter, TokenBucket

    built: Any
    if algorithm == "TokenBucket":
        built = TokenBucket(HUGE, HUGE)
    elif algorithm == "GCRA":
        built = GCRA(HUGE, HUGE)
    else:
        built = FixedWindow(HUGE, 1)
    return RateLimiter(built, name="bench")


def _never_refused(limiter: Any) -> None:
    snap = limiter.snapshot()
    _check(snap.refused == 0 and snap.allowed > 0, f"refused {snap.refused}")


# -- sync ------------------------------------------------------------------------------------


def _b_allow(algorithm: str) -> Any:
    def setup(ctx: Ctx) -> Prepared:
        limiter = _buttress(algorithm)
        return Prepared(sync_calls(partial(limiter.allow, "k")), lambda: _never_refused(limiter))

    return setup


def _b_try(ctx: Ctx) -> Prepared:
    limiter = _buttress("TokenBucket")
    return Prepared(sync_calls(partial(limiter.try_acquire, "k")), lambda: _never_refused(limiter))


def _limits(strategy: str) -> Any:
    def setup(ctx: Ctx) -> Prepared:
        import limits
        from limits import strategies
        from limits.storage import MemoryStorage

        limiter = getattr(strategies, strategy)(MemoryStorage())
        item = limits.parse(f"{HUGE}/second")
        hit = partial(limiter.hit, item, "k")
        return Prepared(sync_calls(hit), lambda: _check(hit(), "limits refused"))

    return setup


def _pyrate(ctx: Ctx) -> Prepared:
    from pyrate_limiter import GCRA, Duration, Limiter, Rate, StateBucket

    limiter = Limiter(StateBucket([Rate(HUGE, Duration.SECOND)], algorithm=GCRA()))
    acquire = partial(limiter.try_acquire, "k", 1, False)
    return Prepared(sync_calls(acquire), lambda: _check(bool(acquire()), "pyrate refused"))


SYNC = TimingScenario(
    name="ratelimit.sync",
    title="rate limit, always-allowed decision, sync, one key",
    contenders=(
        Contender(
            "buttress TokenBucket",
            "buttress",
            "RateLimiter(TokenBucket).allow(k)",
            _b_allow("TokenBucket"),
        ),
        Contender("buttress GCRA", "buttress", "RateLimiter(GCRA).allow(k)", _b_allow("GCRA")),
        Contender(
            "buttress FixedWindow",
            "buttress",
            "RateLimiter(FixedWindow).allow(k)",
            _b_allow("FixedWindow"),
        ),
        Contender(
            "buttress try_acquire", "buttress", "RateLimiter(TokenBucket).try_acquire(k)", _b_try
        ),
        Contender(
            "limits FixedWindow",
            "limits",
            "FixedWindowRateLimiter(MemoryStorage()).hit",
            _limits("FixedWindowRateLimiter"),
        ),
        Contender(
            "limits SlidingCounter",
            "limits",
            "SlidingWindowCounterRateLimiter(...).hit",
            _limits("SlidingWindowCounterRateLimiter"),
        ),
        Contender(
            "pyrate-limiter GCRA",
            "pyrate-limiter",
            "Limiter(StateBucket(GCRA)).try_acquire",
            _pyrate,
        ),
    ),
    targets=(
        Target("buttress TokenBucket", "limits FixedWindow", 0.2),
        Target("buttress GCRA", "limits FixedWindow", 0.2),
        Target("buttress FixedWindow", "limits FixedWindow", None),
        Target("buttress try_acquire", "limits FixedWindow", None),
        Target("buttress TokenBucket", "pyrate-limiter GCRA", None),
    ),
    notes=(
        "allow() returns a bool like limits' hit(); try_acquire() builds a Decision",
        "limits' moving window and pyrate's log buckets grow by one entry per hit: left out",
    ),
)

# -- async -----------------------------------------------------------------------------------


def _b_aacquire(ctx: Ctx) -> Prepared:
    limiter = _buttress("TokenBucket")
    return Prepared(async_calls(limiter.aacquire), lambda: _never_refused(limiter))


def _aiolimiter(ctx: Ctx) -> Prepared:
    import aiolimiter

    limiter = aiolimiter.AsyncLimiter(HUGE, 1)
    return Prepared(async_calls(limiter.acquire), lambda: _check(limiter.has_capacity(), "full"))


ASYNC = TimingScenario(
    name="ratelimit.async",
    title="rate limit, always-allowed acquire, asyncio",
    contenders=(
        Contender(
            "buttress .aacquire",
            "buttress",
            "await RateLimiter(TokenBucket).aacquire()",
            _b_aacquire,
            True,
        ),
        Contender(
            "aiolimiter .acquire",
            "aiolimiter",
            "await AsyncLimiter(1e9, 1).acquire()",
            _aiolimiter,
            True,
        ),
    ),
    targets=(Target("buttress .aacquire", "aiolimiter .acquire", 0.5),),
)

# -- memory per key --------------------------------------------------------------------------


def _keyed_buttress(algorithm: str) -> Any:
    def build() -> Any:
        from buttress.ratelimit import FixedWindow, RateLimiter, TokenBucket

        made = (
            TokenBucket("1/hour", burst=10) if algorithm == "TokenBucket" else FixedWindow(10, 3600)
        )
        limiter = RateLimiter(made, name="keys")
        allow = limiter.allow
        for i in range(KEYS):
            allow(f"user-{i}")
        return limiter

    return build


MEMORY = MemoryScenario(
    name="memory.ratelimit.keys",
    title=f"memory held by a keyed limiter with {KEYS:,} active keys (tracemalloc)",
    subject="buttress TokenBucket",
    limit=BYTES_PER_KEY * KEYS,
    contenders=(
        MemoryContender(
            "buttress TokenBucket",
            "buttress",
            f"RateLimiter(TokenBucket('1/hour', 10)), {KEYS:,} keys",
            _keyed_buttress("TokenBucket"),
            lambda lim, fn: lim.allow("user-0"),
            lambda lim: f"{lim.snapshot().keys} keys",
        ),
        MemoryContender(
            "buttress FixedWindow",
            "buttress",
            f"RateLimiter(FixedWindow(10, 3600)), {KEYS:,} keys",
            _keyed_buttress("FixedWindow"),
            lambda lim, fn: lim.allow("user-0"),
            lambda lim: f"{lim.snapshot().keys} keys",
        ),
    ),
    notes=(
        f"the limit is {BYTES_PER_KEY} B per key: bytes / {KEYS:,} is the cost of one key",
        "the keys' own strings ('user-12345', about 60 B each) are counted: the limiter holds them",
        "no peer here: limits' MemoryStorage takes ~10 s per 100,000 keys under tracemalloc",
    ),
)

SCENARIOS = (SYNC, ASYNC, *REDIS_SCENARIOS)
MEMORY_SCENARIOS = (MEMORY,)
