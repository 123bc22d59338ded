"""Chaos: injected faults and latency at seeded rates, switchable at run time."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from buttress.chaos import Chaos, ChaosSnapshot
from buttress.errors import ConfigError
from buttress.events import ChaosInjected
from buttress.testing import ManualClock, RecordingListener
from tests.conftest import run


async def test_default_fault_is_a_connection_error(mode: str) -> None:
    """With fault_rate=1 and no fault given, every call raises a fresh ConnectionError."""
    chaos = Chaos(fault_rate=1)
    calls: list[int] = []
    errors = []
    for _ in range(2):
        with pytest.raises(ConnectionError, match="buttress chaos: injected fault") as info:
            await run(mode, chaos, calls.append, 1)
        errors.append(info.value)
    assert errors[0] is not errors[1]
    assert calls == []  # the function was never called
    assert chaos.snapshot() == ChaosSnapshot("chaos", True, 2, 0)


async def test_zero_rates_inject_nothing(mode: str) -> None:
    """With both rates at zero, calls go straight through."""
    clock = ManualClock()
    chaos = Chaos(fault=ValueError, latency=5, clock=clock)
    assert await run(mode, chaos, lambda: "ok") == "ok"
    assert clock.sleeps == []


async def test_fault_rate_follows_the_seeded_rng(mode: str) -> None:
    """A seeded rng makes the injected faults repeatable and close to the rate."""
    chaos = Chaos(fault=KeyError, fault_rate=0.3, rng=random.Random(42))
    outcomes = []
    for _ in range(500):
        try:
            await run(mode, chaos, lambda: None)
            outcomes.append(False)
        except KeyError:
            outcomes.append(True)
    replay = random.Random(42)
    assert outcomes == [replay.random() < 0.3 for _ in range(500)]
    assert 100 < sum(outcomes) < 200
    assert chaos.faults == sum(outcomes)


async def test_latency_sleeps_on_the_clock(mode: str) -> None:
    """Injected latency sleeps ``latency`` on the clock before calling."""
    clock = ManualClock()
    chaos = Chaos(latency=timedelta(milliseconds=250), latency_rate=1, clock=clock)
    assert await run(mode, chaos, lambda: "late") == "late"
    assert clock.sleeps == [0.25]
    assert chaos.snapshot() == ChaosSnapshot("chaos", True, 0, 1)


async def test_latency_rate_with_seeded_rng() -> None:
    """latency_rate picks calls with the seeded rng; latency and fault draws are independent."""
    clock = ManualClock()
    chaos = Chaos(latency=1, latency_rate=0.5, rng=random.Random(3), clock=clock)
    for _ in range(100):
        chaos.call(lambda: None)
    replay = random.Random(3)
    assert len(clock.sleeps) == sum(replay.random() < 0.5 for _ in range(100))
    assert chaos.latencies == len(clock.sleeps)


def test_fault_instance_is_copied_each_time() -> None:
    """An exception instance is copied for every injection, never raised twice."""
    original = ValueError("broken", 7)
    chaos = Chaos(fault=original, fault_rate=1)
    raised = []
    for _ in range(2):
        with pytest.raises(ValueError) as info:
            chaos.call(lambda: None)
        raised.append(info.value)
    assert raised[0] is not raised[1]
    assert original not in raised
    assert raised[0].args == raised[1].args == ("broken", 7)


def test_fault_factory_is_called_each_time() -> None:
    """A zero-argument factory makes each fault; one that returns no exception is a TypeError."""
    count = iter(range(10))
    chaos = Chaos(fault=lambda: TimeoutError(f"drill {next(count)}"), fault_rate=1)
    with pytest.raises(TimeoutError, match="drill 0"):
        chaos.call(lambda: None)
    with pytest.raises(TimeoutError, match="drill 1"):
        chaos.call(lambda: None)
    with pytest.raises(TypeError, match="not an exception"):
        Chaos(fault=lambda: "oops", fault_rate=1).call(lambda: None)  # type: ignore[arg-type]


async def test_enable_and_disable_at_run_time(mode: str) -> None:
    """disable() lets calls through; enable() resumes injection."""
    chaos = Chaos(fault_rate=1, enabled=False)
    assert not chaos.enabled
    assert await run(mode, chaos, lambda: 1) == 1
    chaos.enable()
    with pytest.raises(ConnectionError):
        await run(mode, chaos, lambda: 1)
    chaos.disable()
    assert await run(mode, chaos, lambda: 2) == 2
    assert chaos.snapshot() == ChaosSnapshot("chaos", False, 1, 0)


def test_injections_emit_events() -> None:
    """Injected latency and faults are reported as ChaosInjected events."""
    chaos = Chaos(
        fault=KeyError, fault_rate=1, latency=2, latency_rate=1, clock=ManualClock(), name="drill"
    )
    with RecordingListener() as events, pytest.raises(KeyError):
        chaos.call(lambda: None)
    latency, fault = events.of(ChaosInjected)
    assert (latency.source, latency.latency, latency.fault) == ("drill", 2.0, None)
    assert (fault.source, fault.fault) == ("drill", "KeyError")


async def test_decorators() -> None:
    """Decorated sync and async functions get chaos injected."""
    chaos = Chaos(fault=OSError, fault_rate=1)

    @chaos
    def sync() -> int:
        return 1

    @chaos
    async def asynchronous() -> int:
        return 2

    with pytest.raises(OSError):
        sync()
    with pytest.raises(OSError):
        await asynchronous()
    chaos.disable()
    assert (sync(), await asynchronous()) == (1, 2)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"fault_rate": 1.5}, "fault_rate"),
        ({"fault_rate": -0.1}, "fault_rate"),
        ({"fault_rate": float("nan")}, "fault_rate"),
        ({"latency_rate": 2}, "latency_rate"),
        ({"latency": -1}, "latency"),
        ({"latency": float("inf")}, "latency"),
        ({"fault": 42}, "fault"),
        ({"fault": int}, "fault"),
        ({"enabled": "yes"}, "enabled"),
        ({"rng": 7}, "rng"),
    ],
)
def test_bad_options_are_rejected(kwargs: dict[str, Any], field: str) -> None:
    """Rates outside [0, 1], negative latency and bad faults raise ConfigError naming the field."""
    with pytest.raises(ConfigError, match=f"^{field}: ") as info:
        Chaos(**kwargs)
    assert info.value.field == field


def test_describe_lists_the_options() -> None:
    """describe() reports the chaos options."""
    assert Chaos(fault=KeyError, fault_rate=0.1).describe()["options"] == {
        "fault": "KeyError",
        "fault_rate": 0.1,
        "latency": 0.0,
        "latency_rate": 0.0,
        "enabled": True,
    }
