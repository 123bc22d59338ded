"""The public health endpoints: IETF bodies, 200/503, cached and never waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from starlette.applications import Starlette

from buttress import Registry
from buttress.health import HealthRegistry
from buttress.testing import ManualClock

from .conftest import client_for

HEALTH_JSON = "application/health+json"
PROBES = ["/health/", "/health/live", "/health/ready", "/health/startup", "/health/detailed"]


async def test_every_probe_passes_when_checks_pass(app: Starlette, health: HealthRegistry) -> None:
    """After the checks ran, every health endpoint answers 200 pass, uncached, without a token."""
    await health.run(fresh=True)
    async with client_for(app) as client:
        for path in [*PROBES, "/health/circuit-breakers"]:
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"] == HEALTH_JSON
            assert response.headers["cache-control"] == "no-store"
            assert response.json()["status"] == "pass", path


async def test_summary_counts_and_detailed_lists_checks(
    app: Starlette, health: HealthRegistry
) -> None:
    """/health/ counts checks by status; /health/detailed lists each check IETF-style."""
    await health.run(fresh=True)
    async with client_for(app) as client:
        summary = (await client.get("/health/")).json()
        detailed = (await client.get("/health/detailed")).json()
        live = (await client.get("/health/live")).json()
    assert summary == {"status": "pass", "counts": {"pass": 2, "warn": 0, "fail": 0}}
    assert set(detailed["checks"]) == {"process:uptime", "cache:status"}
    assert detailed["checks"]["cache:status"][0]["componentType"] == "datastore"
    assert set(live["checks"]) == {"process:uptime"}


async def test_failing_critical_check_fails_readiness_not_liveness(
    make_app: Callable[..., Starlette], clock: ManualClock
) -> None:
    """A failing readiness check makes /health/ready 503 fail; /health/live stays 200."""
    health = HealthRegistry(clock=clock)
    if "event_loop" in health:  # measures real time; not under test here
        health.remove("event_loop")

    async def db() -> dict[str, str]:
        return {"status": "down", "message": "connection refused"}

    health.add(db, component_type="datastore", groups=["readiness", "startup"])
    await health.run(fresh=True)
    async with client_for(make_app(health=health)) as client:
        ready = await client.get("/health/ready")
        startup = await client.get("/health/startup")
        live = await client.get("/health/live")
        summary = await client.get("/health/")
    assert ready.status_code == 503
    assert ready.json()["status"] == "fail"
    assert ready.json()["checks"]["db:status"][0]["output"] == "connection refused"
    assert startup.status_code == 503
    assert live.status_code == 200
    assert summary.status_code == 503
    assert summary.json()["counts"]["fail"] == 1


async def test_probe_of_a_check_never_run_answers_at_once_and_starts_it(
    app: Starlette, health: HealthRegistry
) -> None:
    """A probe never waits: a critical check with no result yet gives 503 while it starts."""
    async with client_for(app) as client:
        first = await client.get("/health/ready")
        assert first.status_code == 503
        assert first.json()["output"] == "not run yet: cache"
        for _ in range(5):  # the check runs in the background on this loop
            await asyncio.sleep(0)
        second = await client.get("/health/ready")
    assert second.status_code == 200
    assert second.json()["status"] == "pass"


async def test_probe_serves_a_stale_result_while_a_slow_check_refreshes(
    make_app: Callable[..., Starlette], clock: ManualClock
) -> None:
    """A stale cached result is served at once while the slow refresh runs in the background."""
    health = HealthRegistry(clock=clock)
    if "event_loop" in health:  # measures real time; not under test here
        health.remove("event_loop")
    release = asyncio.Event()
    calls = 0

    async def slow() -> bool:
        nonlocal calls
        calls += 1
        if calls > 1:
            await release.wait()
        return True

    health.add(slow, ttl=10, timeout=30)
    await health.run(fresh=True)
    clock.advance(11)
    async with client_for(make_app(health=health)) as client:
        response = await asyncio.wait_for(client.get("/health/ready"), timeout=2)
    assert response.status_code == 200
    assert response.json()["status"] == "pass"
    await asyncio.sleep(0)
    assert calls == 2  # the refresh started and is waiting
    release.set()
    await asyncio.sleep(0)


async def test_circuit_breakers_health_reports_each_breaker(
    app: Starlette, registry: Registry, clock: ManualClock
) -> None:
    """Each breaker is a check; an open one fails as a component and warns overall (200)."""
    registry.breaker("payments").trip()
    db = registry.breaker("db")
    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            db.call(lambda: 1 / 0)
    async with client_for(app) as client:
        opened = (await client.get("/health/circuit-breakers")).json()
        clock.advance(31)
        half = await client.get("/health/circuit-breakers")
    assert opened["status"] == "warn"
    db_check = opened["checks"]["db:state"][0]
    assert db_check["status"] == "fail"
    assert db_check["state"] == "open"
    assert db_check["observedValue"] == 100.0
    assert db_check["retryAfter"] == 30.0
    assert opened["checks"]["payments:state"][0]["state"] == "forced_open"
    assert half.status_code == 200
    assert half.json()["checks"]["db:state"][0]["status"] == "warn"


async def test_default_health_registry_has_a_liveness_check(
    make_app: Callable[..., Starlette], registry: Registry, clock: ManualClock
) -> None:
    """Without a health registry the app makes one with the process check."""
    app = make_app(health=None)
    await app.state.ops.health.run(fresh=True)
    async with client_for(app) as client:
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
    assert live.status_code == 200
    assert "process:uptime" in live.json()["checks"]  # and whatever else is built in
    assert ready.json() == {"status": "pass", "checks": {}}


async def test_probe_reuses_its_body_only_while_the_results_are_fresh(
    app: Starlette, health: HealthRegistry, clock: ManualClock
) -> None:
    """The stored readiness body is served without running the checks while they are fresh; a
    new result, an expired ttl or a new check renders it again."""
    state = {"ok": True, "calls": 0}

    async def flaky() -> bool:
        state["calls"] += 1
        return bool(state["ok"])

    health.add(flaky, component_type="component", ttl=10.0)
    await health.run(fresh=True)
    async with client_for(app) as client:
        first = await client.get("/health/ready")
        assert first.json()["status"] == "pass"
        state["ok"] = False
        clock.advance(5)  # still fresh: the stored body, and no run was started
        assert (await client.get("/health/ready")).content == first.content
        for _ in range(100):
            await asyncio.sleep(0)
        assert state["calls"] == 1
        clock.advance(6)  # past the ttl: the stale result is served and a refresh starts
        await client.get("/health/ready")
        for _ in range(100):
            await asyncio.sleep(0)
        failed = await client.get("/health/ready")
        assert failed.status_code == 503
        assert failed.json()["status"] == "fail"
        state["ok"] = True
        await health.run(fresh=True)  # a new result: rendered again at once
        assert (await client.get("/health/ready")).status_code == 200

        async def extra() -> bool:
            return False

        health.add(extra, component_type="component", ttl=10.0)
        await health.run(fresh=True)
        assert (await client.get("/health/ready")).status_code == 503
