"""Eight real processes (spawn) share a breaker through Redis: opening, probes, a Redis outage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench._fleetproc import Fleet, delete_keys

from buttress.breaker import BreakerState, CircuitBreaker
from buttress.fleet import SharedCircuitBreaker
from buttress.stores import RedisStore
from tests.servers import RedisServer, redis_url

pytestmark = pytest.mark.slow

OPTIONS = {"minimum_calls": 5, "window": 20, "open_for": 0.5, "half_open_calls": 2}


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, stopped at the end."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_eight_processes_open_together_and_probe_as_one(tmp_path: Path) -> None:
    """The dependency dies: all 8 open within 1 s; the fleet sends half_open_calls probes."""
    url = redis_url()
    with Fleet(8, url, OPTIONS, tmp_path) as fleet:
        try:
            assert fleet.wait_for(lambda: fleet.total("ran") >= 8 * 20, 5) < 5
            fleet.kill_dependency()
            took = fleet.wait_for(lambda: "closed" not in fleet.states(), 2)
            assert took < 1.0, fleet.states()
            before = fleet.total("hits")
            time.sleep(0.1)
            hits = fleet.total("hits")
            assert hits - before <= OPTIONS["half_open_calls"]  # nothing but probes get through
            deadline = time.monotonic() + 0.7
            while time.monotonic() < deadline:
                time.sleep(0.05)
            probes = fleet.total("hits") - hits
            assert 1 <= probes + (hits - before) <= 2 * OPTIONS["half_open_calls"], probes
            fleet.revive_dependency()
            took = fleet.wait_for(lambda: set(fleet.states()) == {"closed"}, 3)
            assert took < 3, fleet.states()
        finally:
            delete_keys(url, fleet.prefix)


def test_redis_outage_keeps_calls_flowing_and_rejoins(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    """Redis stops mid-run: calls flow in local mode (degraded); it returns: a trip reaches all."""
    url = f"redis://127.0.0.1:{private_redis.port}/0"
    with Fleet(8, url, OPTIONS, tmp_path) as fleet:
        fleet.wait_for(lambda: min(fleet.arrays["ran"][:]) >= 10, 5)
        private_redis.stop()
        assert fleet.wait_for(lambda: all(fleet.arrays["degraded"][:]), 3) < 3
        ran = fleet.arrays["ran"][:]
        assert (
            fleet.wait_for(
                lambda: all(a > b + 20 for a, b in zip(fleet.arrays["ran"][:], ran, strict=True)), 3
            )
            < 3
        )
        private_redis.start()
        assert fleet.wait_for(lambda: not any(fleet.arrays["degraded"][:]), 3) < 3
        with RedisStore(url, prefix=fleet.prefix, timeout=1.0) as store:
            control = CircuitBreaker("dep", shared=store, **OPTIONS)  # type: ignore[arg-type]
            assert isinstance(control, SharedCircuitBreaker)
            try:
                control.trip()
                took = fleet.wait_for(lambda: set(fleet.states()) == {"forced_open"}, 2)
                assert took < 1.0, fleet.states()
                control.reset()
                assert fleet.wait_for(lambda: set(fleet.states()) == {"closed"}, 2) < 1.0
                assert control.state is BreakerState.CLOSED
            finally:
                control.close()
