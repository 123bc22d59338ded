"""Health checks: a cached readiness evaluation, and ten checks of which one hangs.

``health.ready.cached``: ``await registry.run("readiness")`` with five checks whose results are
fresh in the cache (what a readiness probe costs). Target: <= 20 µs.

``health.hang``: one fresh run of ten checks (five async, four sync in threads, each taking about
10 ms) of which one, a sync check, hangs past its 1 s timeout. The others must not wait for it:
the whole run completes in <= 1.2 s, and the hung check is reported ``fail``. Wall time, median
of a few runs; no peer does this.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench._harness import Contender, Ctx, Prepared, Target, TimingScenario, async_calls

__all__ = ["SCENARIOS", "WallScenario", "run_wall"]

HANG_TARGET_S = 1.2
HANG_TIMEOUT_S = 1.0


def _cached(ctx: Ctx) -> Prepared:
    from buttress.health import HealthRegistry

    registry = HealthRegistry()

    async def ok() -> bool:
        return True

    for i in range(5):
        registry.add(ok, name=f"dependency{i}", ttl=3600)
    report = ctx.run(registry.run("readiness"))
    if report.status.value != "pass":
        raise AssertionError("the cached checks did not pass")
    return Prepared(async_calls(registry.run, "readiness"))


READY = TimingScenario(
    name="health.ready.cached",
    title="readiness evaluation with five fresh cached checks",
    contenders=(
        Contender(
            "buttress HealthRegistry",
            "buttress",
            'await registry.run("readiness"), 5 cached checks',
            _cached,
            True,
        ),
    ),
    targets=(Target("buttress HealthRegistry", None, 20_000.0),),
)


@dataclass(frozen=True)
class WallScenario:
    """One operation timed on the wall clock a few times."""

    name: str
    title: str
    target_s: float
    notes: tuple[str, ...] = ()
    kind: str = field(default="wall", init=False)


HANG = WallScenario(
    name="health.hang",
    title="ten checks, one hanging past its 1 s timeout, one fresh run",
    target_s=HANG_TARGET_S,
    notes=("five async and four sync checks of ~10 ms; the hung one is sync (a thread)",),
)


async def _hang_run() -> tuple[float, str, str]:
    from buttress.health import HealthRegistry

    registry = HealthRegistry()
    release = threading.Event()

    async def quick_async() -> bool:
        await asyncio.sleep(0.01)
        return True

    def quick_sync() -> bool:
        time.sleep(0.01)
        return True

    def hangs() -> bool:
        release.wait(30)
        return True

    for i in range(5):
        registry.add(quick_async, name=f"async{i}")
    for i in range(4):
        registry.add(quick_sync, name=f"sync{i}")
    registry.add(hangs, name="hung", timeout=HANG_TIMEOUT_S)
    started = time.perf_counter()
    report = await registry.run("readiness", fresh=True)
    elapsed = time.perf_counter() - started
    release.set()
    return elapsed, report.checks["hung"].status.value, report.status.value


def run_wall(scenario: WallScenario, ctx: Ctx) -> dict[str, Any]:
    """Time the scenario a few times and judge the median against its target."""
    repeats = 1 if ctx.config.quick else 5
    started = time.perf_counter()
    runs = [ctx.run(_hang_run()) for _ in range(repeats)]
    seconds = [elapsed for elapsed, _, _ in runs]
    median = statistics.median(seconds)
    verdict = {
        "kind": "absolute_s",
        "subject": "ten checks, one hung",
        "peer": None,
        "value": median,
        "limit": scenario.target_s,
        "status": "PASS" if median <= scenario.target_s else "MISS",
    }
    return {
        "kind": "wall",
        "title": scenario.title,
        "seconds": time.perf_counter() - started,
        "runs": seconds,
        "median_s": median,
        "min_s": min(seconds),
        "hung_status": sorted({hung for _, hung, _ in runs}),
        "overall_status": sorted({overall for _, _, overall in runs}),
        "targets": [verdict],
        "notes": list(scenario.notes),
    }


SCENARIOS = (READY, HANG)
