"""DegradationManager: the level from rules, hysteresis, overrides, features, events, history."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from buttress import Registry
from buttress.degrade import (
    BreakerRule,
    DegradationChanged,
    DegradationLevel,
    DegradationManager,
    HealthRule,
    LoadRule,
    PredicateRule,
)
from buttress.errors import ConfigError
from buttress.events import FallbackUsed
from buttress.health import CallableSink, HealthRegistry
from buttress.stores import MemoryStore
from buttress.testing import ManualClock, RecordingListener

from .conftest import Switches

L = DegradationLevel


@pytest.fixture
def depth() -> list[int]:
    """A work queue's depth, set by the test."""
    return [0]


@pytest.fixture
def manager(
    registry: Registry, health: HealthRegistry, clock: ManualClock, depth: list[int]
) -> Iterator[DegradationManager]:
    """A manager over postgres (severe), payments (moderate) and a queue (minor), 30 s of
    hysteresis, with the features recommendations (off at moderate) and search (severe)."""
    manager = DegradationManager(
        [
            HealthRule("postgres", "severe"),
            BreakerRule("payments", "moderate"),
            LoadRule("queue", signal=lambda: depth[0], threshold=100, level="minor"),
        ],
        features={"recommendations": "moderate", "search": L.SEVERE},
        hysteresis=30,
        interval=5,
        health=health,
        registry=registry,
        clock=clock,
    )
    yield manager
    manager.close()


def test_starts_normal_with_every_feature_on(manager: DegradationManager) -> None:
    """No rule holds: NORMAL, and every feature is allowed."""
    assert manager.level is L.NORMAL
    assert manager.allows("recommendations")
    assert manager.allows("search")
    assert manager.features() == {"recommendations": L.MODERATE, "search": L.SEVERE}


def test_the_level_is_the_highest_rule_that_holds(
    manager: DegradationManager, depth: list[int], health: HealthRegistry, switches: Switches
) -> None:
    """Several rules hold: the level is the highest of theirs; features switch off by level."""
    depth[0] = 500
    assert manager.evaluate() is L.MINOR
    assert manager.allows("recommendations")
    switches.up["postgres"] = False
    health.run_sync(fresh=True)
    assert manager.evaluate() is L.SEVERE
    assert not manager.allows("recommendations")
    assert not manager.allows("search")


def test_a_breaker_change_raises_the_level_at_once(
    manager: DegradationManager, registry: Registry
) -> None:
    """Opening a breaker is seen at the next read, before the interval has passed."""
    assert manager.level is L.NORMAL
    registry.get("payments", "breaker").trip()
    assert manager.level is L.MODERATE
    assert not manager.allows("recommendations")


def test_rules_are_read_again_once_the_interval_passed(
    manager: DegradationManager, depth: list[int], clock: ManualClock
) -> None:
    """A load signal is polled: the level follows it after ``interval`` seconds."""
    assert manager.level is L.NORMAL
    depth[0] = 1000
    clock.advance(4.9)
    assert manager.level is L.NORMAL
    clock.advance(0.1)
    assert manager.level is L.MINOR


def test_falls_only_after_the_hysteresis(
    manager: DegradationManager, registry: Registry, clock: ManualClock
) -> None:
    """The level stays up for 30 s after the breaker closed, then falls; no read is needed
    at the exact moment: the first read after it falls."""
    breaker = registry.get("payments", "breaker")
    breaker.trip()
    assert manager.level is L.MODERATE
    clock.advance(10)
    breaker.reset()
    assert manager.level is L.MODERATE
    clock.advance(29)
    assert manager.level is L.MODERATE
    assert manager.status()["falls_to"] == "normal"
    clock.advance(1)
    assert manager.level is L.NORMAL
    assert manager.allows("recommendations")


def test_every_change_is_an_event_and_in_the_history(
    manager: DegradationManager,
    registry: Registry,
    clock: ManualClock,
    recorded: RecordingListener,
) -> None:
    """Rise and fall each emit a DegradationChanged with old, new and reason, kept in order."""
    breaker = registry.get("payments", "breaker")
    breaker.trip()
    manager.evaluate()
    breaker.reset()
    manager.evaluate()
    clock.advance(30)
    manager.evaluate()
    changes = recorded.of(DegradationChanged)
    assert [(c.old, c.new) for c in changes] == [("normal", "moderate"), ("moderate", "normal")]
    assert changes[0].reason == "circuit breaker 'payments' is forced_open"
    assert changes[0].features_off == ("recommendations",)
    assert changes[1].reason.startswith("recovered after 30s")
    assert manager.history() == tuple(changes)
    assert manager.changes == 2
    assert "normal -> moderate" in changes[0].message()


def test_history_is_bounded(registry: Registry, clock: ManualClock) -> None:
    """Only the newest ``history`` changes are kept; the count keeps every change."""
    flag = [False]
    manager = DegradationManager(
        [PredicateRule("flip", lambda: flag[0], "minor")], hysteresis=0, history=3, clock=clock
    )
    try:
        for _ in range(5):
            flag[0] = not flag[0]
            manager.evaluate()
        assert len(manager.history()) == 3
        assert manager.changes == 5
    finally:
        manager.close()


def test_override_wins_and_expires(
    manager: DegradationManager, clock: ManualClock, recorded: RecordingListener
) -> None:
    """A manual level applies at once, for ``expires_in`` seconds, then the computed level."""
    override = manager.set_level("maintenance", reason="db migration", actor="alice", expires_in=60)
    assert manager.level is L.MAINTENANCE
    assert override.actor == "alice"
    assert override.expires_at == clock.time() + 60
    assert not manager.allows("search")
    clock.advance(59.9)
    assert manager.override is not None
    clock.advance(0.1)
    assert manager.level is L.NORMAL
    assert manager.override is None
    changes = recorded.of(DegradationChanged)
    assert [(c.new, c.actor) for c in changes] == [("maintenance", "alice"), ("normal", None)]
    assert changes[0].reason == "manual: db migration"
    assert changes[1].reason == "override expired"


def test_an_override_may_lower_the_level_until_cleared(
    manager: DegradationManager, registry: Registry
) -> None:
    """An override below the computed level applies too; clearing it brings the rules back."""
    registry.get("payments", "breaker").trip()
    assert manager.level is L.MODERATE
    manager.set_level("normal", reason="payments are fine, the probe is wrong", actor="bob")
    assert manager.level is L.NORMAL
    assert manager.allows("recommendations")
    assert manager.status()["computed"] == "moderate"
    cleared = manager.clear(actor="bob", reason="probe fixed")
    assert cleared is not None
    assert cleared.level is L.NORMAL
    assert manager.level is L.MODERATE
    assert manager.history()[-1].reason == "override cleared: probe fixed"
    assert manager.clear(actor="bob") is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"level": "worse", "reason": "x", "actor": "a"}, "level"),
        ({"level": "minor", "reason": " ", "actor": "a"}, "reason"),
        ({"level": "minor", "reason": "x", "actor": ""}, "actor"),
        ({"level": "minor", "reason": "x", "actor": "a", "expires_in": 0}, "expires_in"),
    ],
)
def test_bad_overrides_are_refused(manager: DegradationManager, kwargs, field: str) -> None:
    """A bad level, an empty reason or actor, or a non-positive expiry: ConfigError."""
    with pytest.raises(ConfigError) as caught:
        manager.set_level(**kwargs)
    assert caught.value.field == field
    assert manager.override is None


def test_unknown_features_are_an_error(manager: DegradationManager) -> None:
    """Asking about an undeclared feature raises KeyError naming it (a typo is not 'on')."""
    with pytest.raises(KeyError, match="recomendations"):
        manager.allows("recomendations")
    with pytest.raises(ConfigError):
        manager.fallback("recomendations", lambda: None)


def test_add_feature_and_bad_feature_levels(manager: DegradationManager) -> None:
    """A feature may be added later; NORMAL or a bad name as its level is refused."""
    manager.add_feature("avatars", "minor")
    assert manager.allows("avatars")
    for bad in ("normal", "sometimes"):
        with pytest.raises(ConfigError) as caught:
            manager.add_feature("x", bad)
        assert caught.value.field == "features.x"


def test_fallback_decorator_sync(
    manager: DegradationManager, registry: Registry, recorded: RecordingListener
) -> None:
    """While the feature is off the fallback runs with the same arguments, counted and
    evented; while on, the function runs."""

    def popular(user: str) -> list[str]:
        return ["popular"]

    @manager.fallback("recommendations", popular)
    def recommend(user: str) -> list[str]:
        return [f"for {user}"]

    assert recommend("ann") == ["for ann"]
    registry.get("payments", "breaker").trip()
    assert recommend("ann") == ["popular"]
    assert recommend.__name__ == "recommend"
    used = recorded.of(FallbackUsed)
    assert [(e.source, e.error) for e in used] == [("recommendations", None)]
    assert registry.get("recommendations", "fallback").snapshot().used == 1
    assert manager.status()["features"][0]["fallback_used"] == 1


async def test_fallback_decorator_async(manager: DegradationManager, registry: Registry) -> None:
    """An async function gets an async or a sync fallback, awaited when needed."""

    async def cached(user: str) -> list[str]:
        return ["cached"]

    @manager.fallback("search", cached)
    async def search(user: str) -> list[str]:
        return ["live"]

    @manager.fallback("search", lambda user: ["plain"])
    async def search_plain(user: str) -> list[str]:
        return ["live"]

    assert await search("x") == ["live"]
    manager.set_level("severe", reason="test", actor="t")
    assert await search("x") == ["cached"]
    assert await search_plain("x") == ["plain"]


def test_an_async_fallback_on_a_sync_function_is_refused(manager: DegradationManager) -> None:
    """Running an async fallback from a sync call raises TypeError (and leaves no coroutine)."""

    async def later() -> int:
        return 1

    gate = manager.fallback("recommendations", later)
    manager.set_level("critical", reason="test", actor="t")
    with pytest.raises(TypeError, match="async"):
        gate.call(lambda: 2)


def test_a_failing_rule_is_reported_and_ignored(
    registry: Registry, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A rule that raises does not hold; its error shows in status() and is logged once."""

    def broken() -> bool:
        raise RuntimeError("metrics backend down")

    manager = DegradationManager([PredicateRule("p", broken, "critical")], clock=clock)
    try:
        with caplog.at_level("WARNING", logger="buttress"):
            assert manager.evaluate() is L.NORMAL
            manager.evaluate()
        assert caplog.text.count("metrics backend down") == 1
        rule = manager.status()["rules"][0]
        assert rule["error"] == "RuntimeError: metrics backend down"
        assert not rule["holds"]
    finally:
        manager.close()


def test_a_rule_reading_the_level_does_not_recurse(clock: ManualClock) -> None:
    """A predicate that reads the manager's level during an evaluation gets the old level."""
    seen: list[DegradationLevel] = []

    def predicate() -> bool:
        seen.append(holder[0].level)
        return True

    holder: list[DegradationManager] = []
    holder.append(DegradationManager([PredicateRule("p", predicate, "minor")], clock=clock))
    try:
        assert holder[0].level is L.MINOR
        assert seen == [L.NORMAL]
    finally:
        holder[0].close()


def test_sinks_receive_each_change(clock: ManualClock) -> None:
    """Alert sinks (the health ones) get every change, delivered off the caller's thread."""
    got: list[DegradationChanged] = []
    manager = DegradationManager(sinks=[CallableSink(got.append)], clock=clock)
    try:
        manager.set_level("minor", reason="test", actor="t")
        asyncio.run(manager.drain())
        assert [(c.old, c.new) for c in got] == [("normal", "minor")]
    finally:
        manager.close()


async def test_sinks_in_a_loop_and_a_failing_sink(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """In an event loop sinks run as tasks; a sink that raises is logged, others still get it."""
    got: list[str] = []

    def broken(alert: object) -> None:
        raise RuntimeError("pager down")

    manager = DegradationManager(
        sinks=[CallableSink(broken), CallableSink(lambda a: got.append(a.new))], clock=clock
    )
    try:
        manager.set_level("severe", reason="test", actor="t")
        await manager.drain()
        assert got == ["severe"]
        assert "pager down" in caplog.text
    finally:
        manager.close()


def test_manager_registers_once_per_registry(
    registry: Registry, manager: DegradationManager
) -> None:
    """The manager is found in its registry; a second one there is refused."""
    assert registry.of_kind("degradation") == [manager]
    with pytest.raises(ConfigError, match="already has a degradation manager"):
        DegradationManager(registry=registry)
    assert registry.describe()["degradation"][0]["options"]["hysteresis"] == 30


def test_override_survives_in_the_store(clock: ManualClock) -> None:
    """With a store, the override outlives the manager: a new one (another process) adopts
    it, and a clear made by one is seen by the other at its next tick."""
    store = MemoryStore(clock=clock)
    first = DegradationManager(store=store, clock=clock, name="api")
    first.set_level("severe", reason="incident 42", actor="alice", expires_in=600)
    second = DegradationManager(store=store, clock=clock, name="api")
    try:
        assert second.level is L.SEVERE
        assert second.override is not None
        assert second.override.actor == "alice"
        first.clear(actor="alice")
        asyncio.run(second.tick())
        assert second.level is L.NORMAL
    finally:
        first.close()
        second.close()


async def test_start_ticks_periodically(
    health: HealthRegistry, switches: Switches, clock: ManualClock
) -> None:
    """``start()`` ticks every interval: it refreshes the health results the rules read."""
    manager = DegradationManager(
        [HealthRule("postgres", "severe")], health=health, interval=5, clock=clock
    )
    try:
        switches.up["postgres"] = False
        manager.start()
        assert manager.running
        for _ in range(200):
            await asyncio.sleep(0.001)
            if manager.level is L.SEVERE:
                break
        assert manager.level is L.SEVERE
        with pytest.raises(RuntimeError, match="already running"):
            manager.start()
    finally:
        await manager.stop()
        manager.close()
    assert not manager.running


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"hysteresis": -1}, "hysteresis"),
        ({"interval": 0}, "interval"),
        ({"history": 0}, "history"),
        ({"name": ""}, "name"),
        ({"sinks": ["log"]}, "sinks[0]"),
        ({"features": {"x": "never"}}, "features.x"),
    ],
)
def test_bad_options_are_refused(kwargs, field: str) -> None:
    """Each bad option raises ConfigError naming it, at construction."""
    with pytest.raises(ConfigError) as caught:
        DegradationManager(**kwargs)
    assert caught.value.field == field


def test_status_describes_everything(manager: DegradationManager, depth: list[int]) -> None:
    """status() has the level, the rules with their reasons, features and the levels list."""
    depth[0] = 100
    manager.evaluate()
    status = manager.status()
    assert (status["level"], status["value"], status["target"]) == ("minor", 1, "minor")
    queue = next(rule for rule in status["rules"] if rule["name"] == "queue")
    assert queue["holds"]
    assert queue["reason"] == "queue is 100 (threshold 100)"
    assert status["levels"][-1] == "maintenance"
    assert status["history"][0]["new"] == "minor"


def test_webhook_sink_posts_each_change(clock: ManualClock) -> None:
    """The health WebhookSink POSTs a change as JSON to a real HTTP server."""
    from buttress.health import WebhookSink
    from tests.servers import HttpServer

    with HttpServer() as server:
        manager = DegradationManager(sinks=[WebhookSink(server.url("/ok"))], clock=clock)
        try:
            manager.set_level("critical", reason="datacenter on fire", actor="ops")
            asyncio.run(manager.drain())
        finally:
            manager.close()
        [(method, path, headers)] = server.requests
    assert (method, path) == ("POST", "/ok")
    assert headers["content-type"] == "application/json"
