"""Rate limiters, load shedders and work queues in /metrics: decisions, in-flight and limit
gauges, queue depth and age, load shed counts merged across kinds, valid for promtool."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from buttress import Pipeline, Registry
from buttress.errors import LoadShedError
from buttress.ratelimit import (
    GCRA,
    AdaptiveConcurrency,
    AdaptiveThrottle,
    ConcurrencyLimiter,
    RateLimiter,
    TokenBucket,
    WorkQueue,
)
from buttress.telemetry import ButtressCollector, render
from buttress.telemetry._families import Family
from buttress.telemetry._prometheus import merge
from buttress.testing import ManualClock
from tests.telemetry._helpers import families, run_promtool, samples, value


def _shed_once(limiter: ConcurrencyLimiter) -> None:
    """One call admitted, a nested one shed."""

    def nested() -> None:
        with pytest.raises(LoadShedError):
            limiter.call(lambda: None)

    limiter.call(nested)


def test_rate_limiter_decisions_and_gauges() -> None:
    """Decisions by result, keys held, callers waiting and the quota, per limiter."""
    clock = ManualClock()
    registry = Registry(clock=clock)
    api = registry.limiter("api", TokenBucket(1, burst=3))
    for key in ("a", "a", "a", "a", "b"):
        api.allow(key)
    found = samples(render(registry))
    total = "buttress_ratelimit_decisions_total"
    assert value(found, total, name="api", result="allowed") == 4
    assert value(found, total, name="api", result="refused") == 1
    assert value(found, "buttress_ratelimit_keys", name="api") == 2
    assert value(found, "buttress_ratelimit_waiting", name="api") == 0
    assert value(found, "buttress_ratelimit_limit", name="api") == 3


def test_concurrency_limiters_and_load_shed() -> None:
    """In-flight and limit gauges (fixed and adaptive), and the calls shed."""
    clock = ManualClock()
    registry = Registry(clock=clock)
    db = registry.add(ConcurrencyLimiter(1, name="db", clock=clock))
    registry.add(AdaptiveConcurrency("aimd", initial_limit=7, name="api", clock=clock))
    _shed_once(db)
    _shed_once(db)
    found = samples(render(registry))
    assert value(found, "buttress_concurrency_limit", name="db") == 1
    assert value(found, "buttress_concurrency_limit", name="api") == 7
    assert value(found, "buttress_concurrency_in_flight", name="db") == 0
    assert value(found, "buttress_load_shed_total", name="db") == 2
    assert value(found, "buttress_load_shedding", name="db") == 1
    assert value(found, "buttress_load_shedding", name="api") == 0
    clock.advance(1.5)  # no refusal for more than a second: not shedding any more
    assert value(samples(render(registry)), "buttress_load_shedding", name="db") == 0


async def test_work_queue_depth_age_and_outcomes() -> None:
    """Depth, the oldest item's age, workers, items by outcome; refused items are load shed."""
    clock = ManualClock()
    registry = Registry(clock=clock)
    release = asyncio.Event()

    async def handle(item: int) -> int:
        await release.wait()
        return item

    queue = registry.add(WorkQueue(handle, max_size=2, name="jobs", clock=clock))
    futures = [queue.submit(1)]
    await asyncio.sleep(0.01)  # the worker takes it and waits
    futures += [queue.submit(2), queue.submit(3)]
    with pytest.raises(LoadShedError):
        queue.submit(4)  # the queue is full
    clock.advance(3.0)
    found = samples(render(registry))
    assert value(found, "buttress_work_queue_depth", name="jobs") == 2
    assert value(found, "buttress_work_queue_oldest_age_seconds", name="jobs") == 3.0
    assert value(found, "buttress_work_queue_max_size", name="jobs") == 2
    assert value(found, "buttress_work_queue_workers", name="jobs") == 1
    assert value(found, "buttress_work_queue_busy_workers", name="jobs") == 1
    assert value(found, "buttress_work_queue_items_total", name="jobs", outcome="refused") == 1
    assert value(found, "buttress_load_shed_total", name="jobs") == 1
    release.set()
    await queue.close(drain=True)
    assert [await f for f in futures] == [1, 2, 3]
    found = samples(render(registry))
    assert value(found, "buttress_work_queue_depth", name="jobs") == 0
    assert value(found, "buttress_work_queue_oldest_age_seconds", name="jobs") == 0
    assert value(found, "buttress_work_queue_items_total", name="jobs", outcome="processed") == 3


def test_load_shed_adds_up_kinds_sharing_a_name() -> None:
    """A concurrency limiter and a throttle both called "search" give one load_shed_total
    series (their sum), never a duplicate series."""
    clock = ManualClock()
    registry = Registry(clock=clock)
    limiter = registry.add(ConcurrencyLimiter(1, name="search", clock=clock))
    throttle = registry.add(AdaptiveThrottle(1.0, name="search", clock=clock, rng=random.Random(7)))
    _shed_once(limiter)

    def fail() -> None:
        raise ConnectionError("backend rejects")

    for _ in range(20):  # the backend rejects everything: the throttle starts refusing
        with pytest.raises((ConnectionError, LoadShedError)):
            throttle.call(fail)
    refused = throttle.snapshot().rejected
    assert refused > 0
    found = samples(render(registry))  # samples() fails on a duplicate series
    assert value(found, "buttress_load_shed_total", name="search") == 1 + refused
    assert value(found, "buttress_throttle_rejection_probability", name="search") > 0.5


def test_pipeline_members_are_exposed() -> None:
    """A limiter used only inside a registered pipeline is exposed too."""
    registry = Registry(clock=ManualClock())
    limiter = RateLimiter(GCRA(10, burst=1), name="inner")
    registry.pipeline("p", Pipeline(limiter, name="x"))
    limiter.allow()
    found = samples(render(registry))
    assert value(found, "buttress_ratelimit_decisions_total", name="inner", result="allowed") == 1


def test_families_types_labels_and_promtool() -> None:
    """Counters end in _total, gauges do not; labels are as documented; promtool accepts the
    exposition; the collector registers without duplicate names."""
    clock = ManualClock()
    registry = Registry(clock=clock)
    registry.limiter("api", TokenBucket(5, 5)).allow()
    registry.add(ConcurrencyLimiter(2, name="db", clock=clock))
    registry.add(AdaptiveThrottle(name="search", clock=clock))
    registry.add(WorkQueue(len, name="jobs", clock=clock))
    text = render(registry)
    assert families(text) == {
        "buttress_ratelimit_decisions": ("counter", frozenset({"name", "result"})),
        "buttress_ratelimit_keys": ("gauge", frozenset({"name"})),
        "buttress_ratelimit_waiting": ("gauge", frozenset({"name"})),
        "buttress_ratelimit_limit": ("gauge", frozenset({"name"})),
        "buttress_concurrency_in_flight": ("gauge", frozenset({"name"})),
        "buttress_concurrency_limit": ("gauge", frozenset({"name"})),
        "buttress_load_shed": ("counter", frozenset({"name"})),
        "buttress_load_shedding": ("gauge", frozenset({"name"})),
        "buttress_throttle_rejection_probability": ("gauge", frozenset({"name"})),
        "buttress_work_queue_depth": ("gauge", frozenset({"name"})),
        "buttress_work_queue_oldest_age_seconds": ("gauge", frozenset({"name"})),
        "buttress_work_queue_max_size": ("gauge", frozenset({"name"})),
        "buttress_work_queue_workers": ("gauge", frozenset({"name"})),
        "buttress_work_queue_busy_workers": ("gauge", frozenset({"name"})),
        "buttress_work_queue_items": ("counter", frozenset({"name", "outcome"})),
    }
    assert run_promtool("check", "metrics", stdin=text) == ""
    with ButtressCollector(registry) as collector:
        names = [metric.name for metric in collector.describe()]
        assert names.count("buttress_load_shed") == 1
        collector.register(CollectorRegistry())


_ROWS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=0, max_value=100)),
    max_size=4,
    unique_by=lambda row: row[0],  # one kind never repeats a series of its own
)


@given(st.lists(st.tuples(st.sampled_from(["load_shed", "other"]), _ROWS), max_size=5))
def test_merged_families_keep_every_count_once(parts: list[tuple[str, list[Any]]]) -> None:
    """Families of one name from several kinds become one family whose series are unique and
    hold the sum of what each kind counted."""
    families_in = []
    expected: dict[tuple[str, tuple[str, ...]], float] = {}
    for name, rows in parts:
        family = Family(name, "counter", "help", ("name",))
        for label, count in rows:
            family.rows.append(((label,), count))
            key = (name, (label,))
            expected[key] = expected.get(key, 0) + count
        families_in.append(family)
    merged = merge(families_in)
    assert len({family.name for family in merged}) == len(merged)
    got: dict[tuple[str, tuple[str, ...]], float] = {}
    for family in merged:
        labels = [row[0] for row in family.rows]
        assert len(labels) == len(set(labels))
        got.update(((family.name, labels_), value) for labels_, value in family.rows)
    assert got == expected
