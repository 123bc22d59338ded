"""The fleet: eight processes call a dependency that dies, with shared and local-only breakers.

``fleet.dead``: 8 worker processes (spawn) call a dependency 1 ms apart through a breaker
(``minimum_calls=10, window=50, open_for=0.5, half_open_calls=1``); it dies and stays dead for
3 s. Reported: the calls that reached it after its death, with ``shared=`` a Redis store and
with local-only breakers; target shared <= 1/4 of local. In the same run, the hot path (a
closed breaker's ``call``) of a shared breaker against a local one: target <= 1.5x. Needs the
Redis at ``BUTTRESS_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``). The workers
(``bench/_fleetproc.py``, also used by the multi-process tests) are the same both ways: same
options, same 1 ms pace, the dependency dies for all of them at once (a file appears), and only
calls that reached it while it was dead count.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._fleetproc import Fleet, delete_keys
from bench._harness import Ctx

__all__ = ["SCENARIOS", "FleetScenario", "run_fleet"]

OPTIONS = {"minimum_calls": 10, "window": 50, "open_for": 0.5, "half_open_calls": 1}
DEAD_S = 3.0
CALLS_TARGET = 0.25
HOT_TARGET = 1.5


@dataclass(frozen=True)
class FleetScenario:
    """Processes calling a dying dependency, and the hot path of a shared breaker."""

    name: str
    title: str
    notes: tuple[str, ...] = ()
    kind: str = field(default="wall", init=False)  # reported as a wall-clock scenario


DEAD = FleetScenario(
    name="fleet.dead",
    title="8 processes, a dependency dead for 3 s: calls that reached it; hot path shared/local",
    notes=("shared: RedisStore, sync_interval 0.25 s; the dependency is a file flag",),
)


def _dead_hits(url: str | None, seconds: float) -> tuple[int, int, float]:
    """Calls that reached the dependency while dead (in all, and in its first 0.2 s: before
    any probe), and the fleet's calls per second before."""
    with tempfile.TemporaryDirectory() as tmp, Fleet(8, url, OPTIONS, Path(tmp)) as fleet:
        try:
            time.sleep(0.5)  # every worker warm, breakers closed
            ran, start = fleet.total("ran"), time.monotonic()
            time.sleep(0.5)
            rate = (fleet.total("ran") - ran) / (time.monotonic() - start)
            fleet.kill_dependency()
            time.sleep(0.2)
            first = fleet.total("hits")
            time.sleep(seconds - 0.2)
            return fleet.total("hits"), first, rate
        finally:
            if url:
                delete_keys(url, fleet.prefix)


def _hot(url: str, rounds: int, calls: int) -> tuple[float, float]:
    from buttress.breaker import CircuitBreaker
    from buttress.stores import RedisStore

    def ok() -> None:
        return None

    prefix = f"buttress-bench:{os.getpid()}:"
    with RedisStore(url, prefix=prefix) as store:
        local = CircuitBreaker("hot")
        shared = CircuitBreaker("hot", shared=store)
        per: dict[str, list[float]] = {"local": [], "shared": []}
        try:
            for _ in range(rounds):
                for label, breaker in (("local", local), ("shared", shared)):
                    call = breaker.call
                    start = time.perf_counter_ns()
                    for _ in range(calls):
                        call(ok)
                    per[label].append((time.perf_counter_ns() - start) / calls)
        finally:
            getattr(shared, "close")()
            delete_keys(url, prefix)
    return statistics.median(per["local"]), statistics.median(per["shared"])


def run_fleet(scenario: FleetScenario, ctx: Ctx) -> dict[str, Any]:
    """Run both fleets and the hot-path comparison; judge them against the targets."""
    started = time.perf_counter()
    url = os.environ.get("BUTTRESS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    seconds = 1.0 if ctx.config.quick else DEAD_S
    local_hits, local_first, local_rate = _dead_hits(None, seconds)
    shared_hits, shared_first, shared_rate = _dead_hits(url, seconds)
    local_ns, shared_ns = _hot(url, 3 if ctx.config.quick else 15, 20_000)
    calls_ratio = shared_hits / local_hits if local_hits else None
    hot_ratio = shared_ns / local_ns
    targets: list[dict[str, Any]] = [
        {
            "kind": "ratio",
            "subject": "shared calls to the dead dependency",
            "peer": "local",
            "value": calls_ratio,
            "limit": CALLS_TARGET,
            "status": "PASS" if calls_ratio is not None and calls_ratio <= CALLS_TARGET else "MISS",
        },
        {
            "kind": "ratio",
            "subject": "shared .call (closed)",
            "peer": "local .call",
            "value": hot_ratio,
            "limit": HOT_TARGET,
            "status": "PASS" if hot_ratio <= HOT_TARGET else "MISS",
        },
    ]
    elapsed = time.perf_counter() - started
    return {
        "kind": "wall",
        "title": scenario.title,
        "seconds": elapsed,
        "runs": [elapsed],
        "median_s": elapsed,
        "hung_status": ["-"],
        "overall_status": [f"{t['subject']}: {t['status']}" for t in targets],
        "targets": targets,
        "notes": list(scenario.notes),
        "info": {
            "dead_hits_local": local_hits,
            "dead_hits_shared": shared_hits,
            "first_200ms_local": local_first,
            "first_200ms_shared": shared_first,
            "calls_per_s_local": round(local_rate),
            "calls_per_s_shared": round(shared_rate),
            "hot_ns_local": round(local_ns, 1),
            "hot_ns_shared": round(shared_ns, 1),
        },
    }


SCENARIOS = (DEAD,)
