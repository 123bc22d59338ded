"""The registry's side of rate limits and load shedding: ``Registry.limiter``, ``add`` for
shedders and queues, and their kinds (what configuration, the admin API and metrics use)."""

from __future__ import annotations

import pytest

from buttress import Registry
from buttress.errors import ConfigError
from buttress.ratelimit import (
    AdaptiveConcurrency,
    AdaptiveThrottle,
    ConcurrencyLimiter,
    FixedWindow,
    TokenBucket,
    WorkQueue,
)
from buttress.testing import ManualClock


def test_limiter_is_created_once_and_shared_by_name() -> None:
    """The first call creates the limiter on the registry's clock; later calls (with the same
    options or none) return it; other options are a ConfigError."""
    clock = ManualClock()
    registry = Registry(clock=clock)
    limiter = registry.limiter("api", TokenBucket(1, burst=1))
    assert registry.limiter("api") is limiter
    assert registry.limiter("api", TokenBucket(1, burst=1)) is limiter
    assert registry.get("api", "limiter") is limiter
    assert registry.limiters() == [limiter]
    assert limiter.allow()
    assert not limiter.allow()
    clock.advance(1.0)  # the registry's clock drives it
    assert limiter.allow()
    with pytest.raises(ConfigError, match=r"limiters\.api"):
        registry.limiter("api", TokenBucket(2, burst=1))
    with pytest.raises(ConfigError, match=r"limiters\.other"):
        registry.limiter("other")


def test_keyed_is_remembered() -> None:
    """keyed=True marks the limiter as one quota per key; others are one quota."""
    registry = Registry()
    registry.limiter("clients", FixedWindow(5, 1), keyed=True)
    registry.limiter("partner", FixedWindow(5, 1))
    assert registry.is_keyed("clients")
    assert not registry.is_keyed("partner")
    assert not registry.is_keyed("missing")


def test_shedders_and_queues_have_their_kinds() -> None:
    """add() files concurrency limiters (fixed and adaptive) under "concurrency", throttles
    under "throttle" and work queues under "queue"; names are per kind."""
    registry = Registry()
    fixed = registry.add(ConcurrencyLimiter(2, name="db"))
    adaptive = registry.add(AdaptiveConcurrency(name="api"))
    throttle = registry.add(AdaptiveThrottle(name="db"))
    queue = registry.add(WorkQueue(len, name="jobs"))
    assert registry.of_kind("concurrency") == [adaptive, fixed]
    assert registry.of_kind("throttle") == [throttle]
    assert registry.get("jobs", "queue") is queue
    assert set(registry.describe()) == {"concurrency", "throttle", "queue"}
    with pytest.raises(ConfigError, match=r"concurrencys\.db"):
        registry.add(ConcurrencyLimiter(3, name="db"))
