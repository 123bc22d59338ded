"""The Prometheus collector and render(): real policies in a Registry, read back from the text."""

from __future__ import annotations

import asyncio
import gc
import math
import random
import subprocess
import sys
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric

from buttress import (
    BulkheadFullError,
    Chaos,
    CircuitOpenError,
    ConfigError,
    Fallback,
    Hedge,
    Registry,
    Retry,
    Timeout,
    TimeoutError,
    events,
)
from buttress.retry import Backoff
from buttress.telemetry import CONTENT_TYPE, ButtressCollector, render
from buttress.telemetry._exposition import write
from buttress.telemetry._families import Family
from buttress.telemetry._prometheus import _to_metrics
from buttress.testing import ManualClock
from tests.telemetry._helpers import families, run_promtool, samples, value

STATES = ("closed", "open", "half_open", "forced_open", "disabled")


class Boom(Exception):
    """The failure the tests inject."""


class Skipped(Exception):
    """An error the breakers ignore."""


def fail() -> None:
    raise Boom


def ok() -> int:
    return 1


def attempt(policy: object, fn: object, error: type[BaseException] = Exception) -> None:
    """Call ``fn`` through ``policy`` and swallow the expected error."""
    try:
        policy.call(fn)  # type: ignore[attr-defined]
    except error:
        pass


def breakers_in_every_state() -> Registry:
    """A registry on a manual clock with a breaker in each state: closed (3 ok, 1 failure,
    1 ignored), open (2 failures, 1 rejected), half_open, forced_open, disabled."""
    clock = ManualClock()
    registry = Registry(clock=clock)
    options = {"minimum_calls": 2, "window": 4, "open_for": 30.0, "ignore": Skipped}
    closed = registry.breaker("closed-one", **options)
    for _ in range(3):
        closed.call(ok)
    attempt(closed, fail, Boom)

    def skipped() -> None:
        raise Skipped

    attempt(closed, skipped, Skipped)
    opened = registry.breaker("open-one", **options)
    attempt(opened, fail, Boom)
    attempt(opened, fail, Boom)
    attempt(opened, ok, CircuitOpenError)
    probing = registry.breaker("half-one", **{**options, "open_for": 5.0})
    attempt(probing, fail, Boom)
    attempt(probing, fail, Boom)
    clock.advance(10)  # past half-one's open period, not open-one's
    registry.breaker("forced-one").trip()
    registry.breaker("off-one").disable()
    return registry


def every_policy() -> Registry:
    """``breakers_in_every_state`` plus an idle policy of every other kind."""
    registry = breakers_in_every_state()
    registry.retry("r", on=Boom)
    registry.budget("b")
    registry.bulkhead("b", 1)
    registry.timeout("t", 1.0)
    registry.add(Fallback(value=1, name="f"))
    registry.add(Hedge(delay=1.0, name="h"))
    registry.add(Chaos(name="c"))
    return registry


def test_breaker_state_is_one_hot() -> None:
    """Each breaker has one state row per state, 1 for its current state and 0 for the others."""
    registry = breakers_in_every_state()
    found = samples(render(registry))
    expected = {
        "closed-one": "closed",
        "open-one": "open",
        "half-one": "half_open",
        "forced-one": "forced_open",
        "off-one": "disabled",
    }
    for name, current in expected.items():
        for state in STATES:
            got = value(found, "buttress_circuit_breaker_state", name=name, state=state)
            assert got == (1.0 if state == current else 0.0), (name, state)


def test_breaker_calls_by_outcome() -> None:
    """Successes, failures, ignored errors and rejections are counted per breaker."""
    registry = breakers_in_every_state()
    found = samples(render(registry))
    calls = "buttress_circuit_breaker_calls_total"
    assert value(found, calls, name="closed-one", outcome="success") == 3
    assert value(found, calls, name="closed-one", outcome="failure") == 1
    assert value(found, calls, name="closed-one", outcome="ignored") == 1
    assert value(found, calls, name="closed-one", outcome="rejected") == 0
    assert value(found, calls, name="open-one", outcome="failure") == 2
    assert value(found, calls, name="open-one", outcome="rejected") == 1
    assert value(found, "buttress_circuit_breaker_failure_ratio", name="open-one") == 1.0
    assert value(found, "buttress_circuit_breaker_slow_calls_total", name="open-one") == 0


def test_slow_calls_are_counted() -> None:
    """A call longer than slow_call_duration shows in the slow-call counter."""
    clock = ManualClock()
    registry = Registry(clock=clock)
    breaker = registry.breaker("slowpoke", slow_call_duration=1.0)
    breaker.call(lambda: clock.advance(2))
    found = samples(render(registry))
    assert value(found, "buttress_circuit_breaker_slow_calls_total", name="slowpoke") == 1
    calls = "buttress_circuit_breaker_calls_total"
    assert value(found, calls, name="slowpoke", outcome="success") == 1


def test_transitions_are_counted_per_pair() -> None:
    """closed->open, open->half_open (twice), half_open->open and half_open->closed, each
    counted under its own (from, to) labels; only while the collector is open."""
    clock = ManualClock()
    registry = Registry(clock=clock)
    breaker = registry.breaker("payments", minimum_calls=2, window=4, open_for=10.0)
    breaker.trip()  # before the collector: not counted
    breaker.reset()
    with ButtressCollector(registry) as collector:
        attempt(breaker, fail, Boom)
        attempt(breaker, fail, Boom)  # closed -> open
        clock.advance(11)
        attempt(breaker, fail, Boom)  # open -> half_open, then the trial fails: -> open
        clock.advance(11)
        breaker.call(ok)  # open -> half_open -> closed
        found = samples(collector.render())
    breaker.trip()  # after close(): not counted either
    total = "buttress_circuit_breaker_transitions_total"
    counted = {
        (dict(labels)["from"], dict(labels)["to"]): got
        for (name, labels), got in found.items()
        if name == total
    }
    assert counted == {
        ("closed", "open"): 1,
        ("open", "half_open"): 2,
        ("half_open", "open"): 1,
        ("half_open", "closed"): 1,
    }
    assert all(dict(labels)["name"] == "payments" for name, labels in found if name == total)


def test_transition_seen_by_the_scrape_itself_is_counted() -> None:
    """An OPEN breaker whose open period is over reads as HALF_OPEN at the scrape, and that
    transition is in the same scrape's counts."""
    clock = ManualClock()
    registry = Registry(clock=clock)
    breaker = registry.breaker("lazy", minimum_calls=1, window=1, open_for=5.0)
    with ButtressCollector(registry) as collector:
        attempt(breaker, fail, Boom)
        clock.advance(6)
        found = samples(collector.render())
    assert value(found, "buttress_circuit_breaker_state", name="lazy", state="half_open") == 1
    total = "buttress_circuit_breaker_transitions_total"
    assert value(found, total, name="lazy", **{"from": "open", "to": "half_open"}) == 1


def test_render_counts_transitions_from_its_first_call() -> None:
    """render() keeps one listener per registry: transitions after its first call are counted,
    and the listener goes away with the registry."""
    before = events.listeners()
    registry = Registry()
    breaker = registry.breaker("db")
    render(registry)
    breaker.trip()
    breaker.reset()
    found = samples(render(registry))
    total = "buttress_circuit_breaker_transitions_total"
    assert value(found, total, name="db", **{"from": "closed", "to": "forced_open"}) == 1
    assert value(found, total, name="db", **{"from": "forced_open", "to": "closed"}) == 1
    assert len(events.listeners()) == len(before) + 1
    del registry, breaker
    gc.collect()
    assert events.listeners() == before


def test_retry_counters() -> None:
    """Calls, attempts (first attempts plus retries) and exhausted calls per retry policy."""
    clock = ManualClock()
    registry = Registry(clock=clock)
    retry = registry.retry("upstream", on=Boom, attempts=3, backoff=Backoff.constant(0.1))
    failures = iter([Boom(), Boom()])

    def flaky() -> int:
        error = next(failures, None)
        if error is not None:
            raise error
        return 1

    assert retry.call(flaky) == 1  # 3 attempts
    attempt(retry, fail, Boom)  # 3 attempts, exhausted
    retry.call(ok)  # 1 attempt
    registry.retry("idle", on=Boom)
    found = samples(render(registry))
    assert value(found, "buttress_retry_calls_total", name="upstream") == 3
    assert value(found, "buttress_retry_attempts_total", name="upstream") == 7
    assert value(found, "buttress_retry_exhausted_total", name="upstream") == 1
    assert value(found, "buttress_retry_attempts_total", name="idle") == 0


def test_retry_budget_available() -> None:
    """A registered retry budget shows how many retries it still allows."""
    registry = Registry(clock=ManualClock())
    registry.budget("shared", ratio=0.1, min_per_second=1, ttl=10.0)
    found = samples(render(registry))
    assert value(found, "buttress_retry_budget_available", name="shared") == 10


async def test_bulkhead_gauges_while_calls_run_and_wait() -> None:
    """Active and queued calls are read at the scrape; limits and rejections are exposed."""
    registry = Registry()
    bulkhead = registry.bulkhead("pool", 1, max_queued=1)
    release = asyncio.Event()

    async def hold() -> None:
        await release.wait()

    first = asyncio.create_task(bulkhead.acall(hold))
    second = asyncio.create_task(bulkhead.acall(hold))
    await asyncio.sleep(0)
    with pytest.raises(BulkheadFullError):
        await bulkhead.acall(hold)
    found = samples(render(registry))
    release.set()
    await asyncio.gather(first, second)
    assert value(found, "buttress_bulkhead_active", name="pool") == 1
    assert value(found, "buttress_bulkhead_queued", name="pool") == 1
    assert value(found, "buttress_bulkhead_rejected_total", name="pool") == 1
    assert value(found, "buttress_bulkhead_max_concurrent", name="pool") == 1
    assert value(found, "buttress_bulkhead_max_queued", name="pool") == 1
    after = samples(render(registry))
    assert value(after, "buttress_bulkhead_active", name="pool") == 0


def test_timeout_fallback_chaos_and_hedge_counters() -> None:
    """Expired timeouts, fallback answers, chaos injections and hedges are exposed by name."""
    clock = ManualClock()
    registry = Registry(clock=clock)
    timeout = registry.timeout("slow-api", 1.0)
    attempt(timeout, lambda: clock.advance(2), TimeoutError)
    fallback = registry.add(Fallback(value=0, name="cached"))
    fallback.call(fail)
    fallback.call(fail)
    chaos = registry.add(
        Chaos(fault=Boom, fault_rate=1.0, name="monkey", clock=clock, rng=random.Random(1))
    )
    attempt(chaos, ok, Boom)
    registry.add(Hedge(delay=0.5, name="reads"))
    found = samples(render(registry))
    assert value(found, "buttress_timeout_expired_total", name="slow-api") == 1
    assert value(found, "buttress_fallback_used_total", name="cached") == 2
    assert value(found, "buttress_chaos_injected_total", name="monkey", type="fault") == 1
    assert value(found, "buttress_chaos_injected_total", name="monkey", type="latency") == 0
    assert value(found, "buttress_chaos_enabled", name="monkey") == 1
    assert value(found, "buttress_hedge_launched_total", name="reads") == 0
    assert value(found, "buttress_hedge_won_total", name="reads") == 0


def test_unregistered_pipeline_members_are_included_once() -> None:
    """Policies inside a registered pipeline show up even when not registered by name; an
    unregistered one whose name is taken by a registered one is left out (no duplicate series)."""
    clock = ManualClock()
    registry = Registry(clock=clock)
    shared = registry.breaker("db")
    inner = Retry(on=Boom, name="inner-retry", clock=clock)
    registry.pipeline("api", Timeout(1.0, name="api-timeout", clock=clock), inner, shared)
    from buttress import CircuitBreaker

    registry.pipeline("other", CircuitBreaker("db", clock=clock), Retry(on=Boom, name="r2"))
    inner.call(ok)
    found = samples(render(registry))  # samples() asserts there is no duplicate series
    assert value(found, "buttress_retry_calls_total", name="inner-retry") == 1
    assert value(found, "buttress_retry_calls_total", name="r2") == 0
    assert value(found, "buttress_timeout_expired_total", name="api-timeout") == 0
    names = {dict(labels)["name"] for n, labels in found if n == "buttress_circuit_breaker_state"}
    assert names == {"db"}


def test_empty_registry_renders_nothing() -> None:
    """No policies, no families: an empty exposition is valid."""
    assert render(Registry()) == b""


def test_render_is_byte_identical_to_generate_latest() -> None:
    """render()'s own writer gives exactly what prometheus_client's generate_latest gives for
    the same registry, label values that need escaping included."""
    registry = breakers_in_every_state()
    odd = registry.breaker('quote " back \\ slash\nnewline', minimum_calls=3, window=3)
    attempt(odd, fail, Boom)
    registry.retry("r", on=Boom)
    registry.bulkhead("b", 3)
    registry.add(Chaos(name="c", enabled=False))
    with ButtressCollector(registry) as collector:
        odd.trip()
        collector_registry = CollectorRegistry()
        collector.register(collector_registry)
        assert collector.render() == generate_latest(collector_registry)
    assert CONTENT_TYPE == CONTENT_TYPE_PLAIN_0_0_4


def test_writer_formats_numbers_like_generate_latest() -> None:
    """Large counts, fractions, negatives, infinities and NaN are written as Go would, like
    generate_latest; families with 0 to 3 labels are written alike."""
    numbers = [0, 1, 999_999, 1_000_000, 1_234_567, 12_345_678_901_234_567, 0.25, 1e-9, 2.5e20]
    numbers += [-3, -1_234_567, 0.1 + 0.2, math.inf, -math.inf, math.nan, 7.0]
    built = [
        Family("x_plain", "gauge", "no labels", (), [((), 5)]),
        Family("x_one", "counter", "one\nlabel \\ help", ("name",), []),
        Family("x_two", "gauge", "two labels", ("zeta", "alpha"), []),
        Family("x_three", "counter", "three labels", ("to", "name", "from"), []),
    ]
    for index, number in enumerate(numbers):
        built[1].rows.append(((f"n{index}",), number))
        built[2].rows.append(((f"z{index}", 'a"\\'), number))
        built[3].rows.append((("b", f"n{index}", "a"), number))

    class Adapter:
        def collect(self) -> Iterator[Metric]:
            return _to_metrics(built)

    assert write(built) == generate_latest(Adapter())


def test_metric_names_types_and_labels() -> None:
    """Counters end in _total, the rest are gauges, and each family has the documented labels."""
    registry = every_policy()
    with ButtressCollector(registry) as collector:
        registry.breaker("closed-one").trip()
        got = {
            name: (kind, set(labels))
            for name, (kind, labels) in families(collector.render()).items()
        }
    assert got == {
        "buttress_circuit_breaker_calls": ("counter", {"name", "outcome"}),
        "buttress_circuit_breaker_slow_calls": ("counter", {"name"}),
        "buttress_circuit_breaker_state": ("gauge", {"name", "state"}),
        "buttress_circuit_breaker_failure_ratio": ("gauge", {"name"}),
        "buttress_circuit_breaker_transitions": ("counter", {"name", "from", "to"}),
        "buttress_retry_calls": ("counter", {"name"}),
        "buttress_retry_attempts": ("counter", {"name"}),
        "buttress_retry_exhausted": ("counter", {"name"}),
        "buttress_retry_budget_available": ("gauge", {"name"}),
        "buttress_bulkhead_rejected": ("counter", {"name"}),
        "buttress_bulkhead_active": ("gauge", {"name"}),
        "buttress_bulkhead_queued": ("gauge", {"name"}),
        "buttress_bulkhead_max_concurrent": ("gauge", {"name"}),
        "buttress_bulkhead_max_queued": ("gauge", {"name"}),
        "buttress_timeout_expired": ("counter", {"name"}),
        "buttress_fallback_used": ("counter", {"name"}),
        "buttress_hedge_launched": ("counter", {"name"}),
        "buttress_hedge_won": ("counter", {"name"}),
        "buttress_chaos_injected": ("counter", {"name", "type"}),
        "buttress_chaos_enabled": ("gauge", {"name"}),
    }


def test_no_secret_in_labels() -> None:
    """A policy named after a DSN is exposed with its password masked."""
    registry = Registry()
    registry.breaker("postgresql://app:hunter2@db:5432/orders")
    text = render(registry)
    assert b"hunter2" not in text
    assert b'name="postgresql://app:***@db:5432/orders"' in text


def test_prefix_is_applied_and_checked() -> None:
    """prefix= renames every family; a prefix that is not a metric name is a ConfigError."""
    registry = Registry()
    registry.breaker("db")
    assert render(registry, prefix="svc").startswith(b"# HELP svc_circuit_breaker_calls_total")
    with pytest.raises(ConfigError, match="prefix"):
        render(registry, prefix="bad-prefix")
    with pytest.raises(ConfigError, match="registry"):
        ButtressCollector(object())  # type: ignore[arg-type]


def test_register_describe_and_close() -> None:
    """register() uses the given CollectorRegistry, which refuses a second collector with the
    same names; close() unregisters it and removes its listener; nothing is registered before."""
    registry = Registry()
    registry.breaker("db")
    before = events.listeners()
    collector = ButtressCollector(registry)
    assert len(events.listeners()) == len(before) + 1
    target = CollectorRegistry()
    assert target.get_sample_value("buttress_circuit_breaker_state", {}) is None
    assert collector.register(target) is target
    labels = {"name": "db", "state": "closed"}
    assert target.get_sample_value("buttress_circuit_breaker_state", labels) == 1.0
    described = {metric.name for metric in collector.describe()}
    assert "buttress_retry_exhausted" in described
    assert "buttress_health_check_status" not in described
    with ButtressCollector(registry) as twin, pytest.raises(ValueError, match="Duplicated"):
        twin.register(target)
    collector.close()
    collector.close()
    assert events.listeners() == before
    assert target.get_sample_value("buttress_circuit_breaker_state", labels) is None


def test_nothing_is_registered_or_imported_eagerly() -> None:
    """Importing buttress does not import prometheus_client; importing buttress.telemetry and
    rendering registers nothing in prometheus_client's default registry."""
    code = (
        "import sys, buttress\n"
        "assert 'prometheus_client' not in sys.modules, 'buttress imported prometheus_client'\n"
        "import buttress.telemetry as t\n"
        "r = buttress.Registry(); r.breaker('db'); t.render(r)\n"
        "assert 'prometheus_client' not in sys.modules, 'render imported prometheus_client'\n"
        "from prometheus_client import REGISTRY, generate_latest\n"
        "assert b'buttress_' not in generate_latest(REGISTRY)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_exposition_passes_promtool_check_metrics() -> None:
    """promtool check metrics finds no problem in an exposition with every kind of policy."""
    registry = every_policy()
    with ButtressCollector(registry) as collector:
        registry.breaker("off-one").reset()
        text = collector.render()
    assert b"buttress_circuit_breaker_transitions_total" in text
    assert run_promtool("check", "metrics", stdin=text) == ""
