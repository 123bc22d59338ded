"""Health checks in the exposition: each check's last status, duration, time and settings."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from buttress import Registry
from buttress.health import Check, CheckResult, HealthRegistry, HealthReport
from buttress.telemetry import ButtressCollector, HealthSource, render
from buttress.testing import ManualClock
from tests.telemetry._helpers import run_promtool, samples, value

SECRET = "postgresql://app:hunter2@db:5432/orders"


class LastReport:
    """A HealthSource over the last HealthReport (what a caller holding reports can pass)."""

    def __init__(self, report: HealthReport) -> None:
        self.report = report

    def last_results(self) -> Sequence[tuple[Check, CheckResult | None]]:
        return [
            (outcome.check, outcome.result if outcome.age is not None else None)
            for outcome in self.report.checks.values()
        ]


def health_registry(clock: ManualClock) -> HealthRegistry:
    """db (critical, readiness) fails; cache (not critical) warns; disk passes; the built-in
    process check passes."""
    health = HealthRegistry(clock=clock)

    async def db() -> CheckResult:
        return CheckResult.failed(f"cannot reach {SECRET}")

    async def cache() -> CheckResult:
        return CheckResult.warned("slow")

    async def disk() -> CheckResult:
        clock.advance(0.25)
        return CheckResult.passed()

    health.add(db, component_type="datastore")
    health.add(cache, component_type="datastore", critical=False)
    health.add(disk, component_type="system", groups=("readiness", "startup"))
    return health


def check_rows(exposition: bytes) -> None:
    """The rows both health tests expect from ``health_registry``."""
    found = samples(exposition)
    status = "buttress_health_check_status"
    assert value(found, status, check="db") == 0
    assert value(found, status, check="cache") == 1
    assert value(found, status, check="disk") == 2
    assert value(found, status, check="process") == 2
    assert value(found, "buttress_health_check_duration_seconds", check="disk") == 0.25
    stamp = "buttress_health_check_last_run_timestamp_seconds"
    assert value(found, stamp, check="db") == pytest.approx(1_700_000_000.25, abs=0.5)
    info = "buttress_health_check_info"
    assert value(found, info, **settings("db", "datastore", "true", "readiness")) == 1
    assert value(found, info, **settings("cache", "datastore", "false", "readiness")) == 1
    assert value(found, info, **settings("disk", "system", "true", "readiness", "startup")) == 1
    assert value(found, info, **settings("process", "system", "true", "liveness")) == 1
    assert b"hunter2" not in exposition


def settings(check: str, component_type: str, critical: str, *groups: str) -> dict[str, str]:
    """The labels of a check's ``buttress_health_check_info`` row."""
    labels = {"check": check, "component_type": component_type, "critical": critical}
    for group in ("liveness", "readiness", "startup"):
        labels[group] = "true" if group in groups else "false"
    return labels


def test_health_source_results_show_up() -> None:
    """Status (2 pass, 1 warn, 0 fail), last duration and time, and settings of every check."""
    clock = ManualClock()
    report = health_registry(clock).run_sync()
    check_rows(render(Registry(), LastReport(report)))


def test_check_never_run_counts_as_warn_without_duration() -> None:
    """A check not run yet reads 1 (like warn) and has no duration or time rows."""
    check = Check("later", lambda: True)

    class NeverRun:
        def last_results(self) -> Sequence[tuple[Check, CheckResult | None]]:
            return [(check, None)]

    found = samples(render(Registry(), NeverRun()))
    assert value(found, "buttress_health_check_status", check="later") == 1
    names = {name for name, _ in found}
    assert "buttress_health_check_duration_seconds" not in names
    assert "buttress_health_check_last_run_timestamp_seconds" not in names


def test_health_families_pass_promtool() -> None:
    """promtool check metrics accepts the health families next to a breaker's."""
    registry = Registry()
    registry.breaker("db")
    report = health_registry(ManualClock()).run_sync()
    with ButtressCollector(registry, health=LastReport(report)) as collector:
        text = collector.render()
        described = {metric.name for metric in collector.describe()}
    assert "buttress_health_check_status" in described
    assert run_promtool("check", "metrics", stdin=text) == ""


def test_health_registry_results_show_up() -> None:
    """A HealthRegistry passed as health= exposes its cached results, without running checks."""
    clock = ManualClock()
    health = health_registry(clock)
    health.run_sync()
    source: HealthSource = health
    check_rows(render(Registry(), source))
