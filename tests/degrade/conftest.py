"""Fixtures of the degradation tests: a manual clock, a registry with a breaker, a health
registry with checks the test switches, and recorded events. Nothing here is autouse."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from buttress import Registry
from buttress.health import CheckResult, HealthRegistry
from buttress.testing import ManualClock, RecordingListener


class Switches:
    """The state of the health checks ``postgres`` and ``search``: True passes."""

    def __init__(self) -> None:
        self.up = {"postgres": True, "search": True}

    def check(self, name: str) -> CheckResult:
        return CheckResult.passed() if self.up[name] else CheckResult.failed(f"{name} is down")


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when told to."""
    return ManualClock(start=1000.0)


@pytest.fixture
def registry(clock: ManualClock) -> Registry:
    """A registry with the breaker ``payments`` (opens after 2 failures of 2 calls)."""
    registry = Registry(clock=clock)
    registry.breaker("payments", minimum_calls=2, window=2, open_for=30)
    return registry


@pytest.fixture
def switches() -> Switches:
    """Turn the health checks on and off."""
    return Switches()


@pytest.fixture
def health(clock: ManualClock, switches: Switches) -> HealthRegistry:
    """A health registry with ``postgres`` and ``search`` checks (no built-in real-time ones)."""
    health = HealthRegistry(clock=clock)
    for check in health.checks():
        health.remove(check.name)
    for name in ("postgres", "search"):

        def check(name: str = name) -> CheckResult:
            return switches.check(name)

        health.add(check, name=name, component_type="datastore", ttl=0)
    return health


@pytest.fixture
def recorded() -> Iterator[RecordingListener]:
    """Every event emitted during the test."""
    with RecordingListener() as listener:
        yield listener
