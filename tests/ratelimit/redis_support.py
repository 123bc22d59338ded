"""Helpers of the Redis rate-limit tests: a store under a prefix of its own, cleaned up after,
and limiters whose scripts run on a ``ManualClock`` instead of the server's ``TIME``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from bench._fleetproc import delete_keys

from buttress.ratelimit import Algorithm, RateLimiter
from buttress.ratelimit._redis import RedisRateLimiter, server_time_override
from buttress.stores import RedisStore
from buttress.testing import ManualClock
from tests.servers import redis_url

__all__ = ["on_redis", "redis_store", "unique_name"]

START = 1000.0
"""Where the tests' manual clocks start (dyadic steps from it are exact in seconds and us)."""


def unique_name() -> str:
    """A limiter name no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


@contextmanager
def redis_store(timeout: float = 1.0) -> Iterator[RedisStore]:
    """A store on the test Redis under a unique prefix; every key under it is deleted after."""
    url = redis_url()
    prefix = f"buttress-test:{uuid.uuid4().hex[:12]}:"
    store = RedisStore(url, prefix=prefix, timeout=timeout)
    try:
        yield store
    finally:
        store.close()
        delete_keys(url, prefix)


def on_redis(
    algorithm: Algorithm,
    store: RedisStore,
    clock: ManualClock,
    *,
    name: str | None = None,
    lease: bool | float = False,
) -> RedisRateLimiter:
    """A Redis limiter whose scripts read ``clock`` (in whole microseconds), not ``TIME``."""
    limiter = RateLimiter(
        algorithm, name=name or unique_name(), store=store, clock=clock, lease=lease
    )
    assert isinstance(limiter, RedisRateLimiter)
    server_time_override(limiter, clock)
    return limiter
