"""The proof: the demo's flaky upstream goes down, the level rises, the feature switches off
and its fallback serves, the ops API shows it; the upstream returns, the level falls after the
hysteresis and the feature is back."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from buttress import Registry
from buttress.cli._upstream import FlakyUpstream, Phase
from buttress.degrade import DegradationLevel, DegradationManager, HealthRule
from buttress.health import HealthRegistry
from buttress.health.checks import http_check
from buttress.ops import create_app
from buttress.testing import ManualClock
from tests.ops.conftest import OP, TOKENS, VIEW, client_for

ADMIN = "/admin/reliability/degradation"
CYCLE = (Phase("healthy", 0.0, 0.0), Phase("down", 1.0, 0.0, listening=False))


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    """Poll ``predicate`` (async) in short real steps until it is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_flaky_upstream_degrades_the_service_and_it_recovers() -> None:
    """Down: SEVERE, recommendations off, the fallback answers, the API and metrics say so.
    Back: the level holds for the 30 s hysteresis, then NORMAL and live answers again."""
    now = [0.0]
    upstream = FlakyUpstream(phase_seconds=10, now=lambda: now[0], cycle=CYCLE)
    await upstream.start()
    clock = ManualClock()
    registry = Registry(clock=clock)
    health = HealthRegistry(clock=clock)
    for check in health.checks():
        health.remove(check.name)
    health.add(http_check("upstream", f"{upstream.url}/health", timeout=2.0, ttl=0))
    manager = DegradationManager(
        [HealthRule("upstream", "severe")],
        features={"recommendations": "severe"},
        hysteresis=30,
        interval=1,
        health=health,
        registry=registry,
        clock=clock,
    )
    app = create_app(
        registry, health=health, tokens=TOKENS, state_dir=":memory:", clock=clock, scheduler=None
    )
    try:
        async with (
            httpx.AsyncClient(base_url=upstream.url, timeout=2) as http,
            client_for(app) as ops,
        ):

            def popular(user: str) -> dict[str, str]:
                return {"source": "fallback", "items": "popular"}

            @manager.fallback("recommendations", popular)
            async def recommend(user: str) -> dict[str, str]:
                answer = await http.get("/")
                answer.raise_for_status()
                return {"source": "live", "phase": answer.json()["phase"]}

            async def monitor_round() -> dict[str, Any]:
                """What the ops server does: run the checks, a second passes, read the level."""
                ran = await ops.post("/admin/reliability/health/run", headers=OP)
                assert ran.status_code == 200
                clock.advance(1)
                status = await ops.get(ADMIN, headers=VIEW)
                assert status.status_code == 200
                return dict(status.json())

            async def upstream_answers() -> bool:
                try:
                    return (await http.get("/health")).status_code == 200
                except httpx.TransportError:
                    return False

            async def upstream_refuses() -> bool:
                return not await upstream_answers()

            # Healthy: normal, the feature serves live answers.
            status = await monitor_round()
            assert status["level"] == "normal"
            assert await recommend("ann") == {"source": "live", "phase": "healthy"}

            # The upstream goes down: the level rises at once, the fallback serves.
            now[0] = 10
            await _until(upstream_refuses)
            status = await monitor_round()
            assert status["level"] == "severe"
            assert status["rules"][0]["holds"]
            assert status["rules"][0]["reason"].startswith("health check 'upstream' is fail")
            assert await recommend("ann") == {"source": "fallback", "items": "popular"}
            status = (await ops.get(ADMIN, headers=VIEW)).json()
            assert status["features"] == [
                {
                    "name": "recommendations",
                    "off_at": "severe",
                    "enabled": False,
                    "fallback_used": 1,
                }
            ]
            assert [(h["old"], h["new"]) for h in status["history"]] == [("normal", "severe")]
            probe = (await ops.get("/health/degradation")).json()
            assert (probe["status"], probe["level"]) == ("warn", "severe")
            metrics = (await ops.get("/metrics", headers=VIEW)).text
            assert "buttress_degradation_level 3.0" in metrics
            assert 'buttress_fallback_used_total{name="recommendations"} 1.0' in metrics

            # The upstream comes back: the level holds through the hysteresis, then falls.
            now[0] = 20
            await _until(upstream_answers)
            status = await monitor_round()
            assert status["level"] == "severe"
            assert (status["target"], status["falls_to"]) == ("normal", "normal")
            assert await recommend("ann") == {"source": "fallback", "items": "popular"}
            clock.advance(28)
            assert (await monitor_round())["level"] == "severe"  # 29 s after it came back
            status = await monitor_round()  # 30 s
            assert status["level"] == "normal"
            assert status["history"][-1]["reason"].startswith("recovered after 30s")
            assert manager.level is DegradationLevel.NORMAL
            assert await recommend("ann") == {"source": "live", "phase": "healthy"}
            assert (await ops.get("/health/degradation")).json()["status"] == "pass"
    finally:
        manager.close()
        app.state.ops.close()
        await upstream.close()
