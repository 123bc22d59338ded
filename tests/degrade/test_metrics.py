"""The degradation metrics: level, changes, features and fallback uses, valid for promtool."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from buttress import Registry
from buttress.degrade import CachedFallback, DegradationManager
from buttress.telemetry import ButtressCollector, render
from tests.telemetry._helpers import run_promtool, samples, value


def test_exposition_holds_the_degradation_families_and_passes_promtool() -> None:
    """Level (0..5), changes and feature states are exposed; promtool accepts the text."""
    registry = Registry()
    manager = DegradationManager(
        features={"recommendations": "moderate", "search": "severe"}, registry=registry
    )
    try:
        gate = manager.fallback("recommendations", list)
        registry.add(CachedFallback(name="profile"))
        manager.set_level("moderate", reason="test", actor="t")
        gate.call(lambda: ["live"])
        text = render(registry)
        found = samples(text)
        assert value(found, "buttress_degradation_level") == 2
        assert value(found, "buttress_degradation_changes_total") == 1
        assert value(found, "buttress_degradation_feature_enabled", feature="recommendations") == 0
        assert value(found, "buttress_degradation_feature_enabled", feature="search") == 1
        assert value(found, "buttress_fallback_used_total", name="recommendations") == 1
        assert value(found, "buttress_fallback_used_total", name="profile") == 0
        run_promtool("check", "metrics", stdin=text)
    finally:
        manager.close()


def test_collector_describes_and_collects_the_families() -> None:
    """The prometheus_client collector exposes the same values, and lists the families even
    without a manager (describe)."""
    registry = Registry()
    with ButtressCollector(registry) as collector:
        names = {metric.name for metric in collector.describe()}
        assert {"buttress_degradation_level", "buttress_degradation_changes"} <= names
        manager = DegradationManager(registry=registry)
        try:
            manager.set_level("critical", reason="test", actor="t")
            scrape = generate_latest(collector.register(CollectorRegistry())).decode()
        finally:
            manager.close()
    assert "buttress_degradation_level 4.0" in scrape
    assert "buttress_degradation_changes_total 1.0" in scrape


def test_no_manager_no_degradation_families() -> None:
    """A registry without a manager exposes no degradation family (empty ones are left out)."""
    assert b"buttress_degradation" not in render(Registry())
