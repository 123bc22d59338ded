"""Side-by-side benchmarks of buttress and its peers (``python -m bench``, ``make bench``).

``run()`` measures the selected scenarios in one process and one event loop, prints a table per
scenario and a summary of the targets, and writes every number to a JSON file. A benchmark is
not a test: nothing here fails on a slow number, it reports PASS or MISS.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import (
    backup,
    baseline,
    breaker,
    degrade,
    dlq,
    flags,
    fleet,
    health,
    http,
    memory,
    metrics,
    pipeline,
    ratelimit,
    retry,
    server,
)
from bench._harness import Config, Ctx, TimingScenario, run_timing
from bench._report import format_header, format_scenario, format_summary, machine

__all__ = ["DEFAULT_OUT", "SCENARIOS", "run", "select"]

DEFAULT_OUT = Path(__file__).parent / "results" / "latest.json"

Scenario = (
    TimingScenario
    | memory.MemoryScenario
    | health.WallScenario
    | fleet.FleetScenario
    | server.ServerScenario
    | backup.BackupScenario
)

# Memory last: tracemalloc slows everything it watches.
SCENARIOS: tuple[Scenario, ...] = (
    *baseline.SCENARIOS,
    *breaker.SCENARIOS,
    *retry.SCENARIOS,
    *pipeline.SCENARIOS,
    *health.SCENARIOS,
    *http.SCENARIOS,
    *dlq.SCENARIOS,
    *flags.SCENARIOS,
    *degrade.SCENARIOS,
    *fleet.SCENARIOS,
    *metrics.SCENARIOS,
    *server.SCENARIOS,
    *backup.SCENARIOS,
    *ratelimit.SCENARIOS,
    *memory.SCENARIOS,
    *ratelimit.MEMORY_SCENARIOS,
)

MEMORY_REPEATS = 5


def select(only: Iterable[str] = ()) -> list[Scenario]:
    """The scenarios whose name contains one of ``only`` (all of them when it is empty)."""
    wanted = [w for w in only if w]
    if not wanted:
        return list(SCENARIOS)
    return [s for s in SCENARIOS if any(w in s.name for w in wanted)]


def run(
    *,
    only: Sequence[str] = (),
    config: Config | None = None,
    out: Path | None = DEFAULT_OUT,
    echo: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Run the selected scenarios, print the tables, write ``out`` (unless None); return all."""
    config = config or Config()
    scenarios = select(only)
    if not scenarios:
        raise ValueError(f"no scenario matches {list(only)!r}; see --list")
    info = machine()
    results: dict[str, Any] = {
        "machine": info,
        "config": asdict(config),
        "selected": [s.name for s in scenarios],
        "fairness": {
            "logging": "disabled for every library: logging.disable(logging.CRITICAL)",
            "gc": "enabled; gc.collect() before each sample",
            "event_loop": "one asyncio event loop for the whole run; async def loops await N times",
            "ratios": "median of per-round ratios subject/peer (rounds are interleaved)",
        },
        "scenarios": {},
    }
    echo(format_header(info, results["config"]))
    started = time.perf_counter()
    previous_disable = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    loop = asyncio.new_event_loop()
    ctx = Ctx(loop, config)
    try:
        for scenario in scenarios:
            if isinstance(scenario, memory.MemoryScenario):
                repeats = 1 if config.quick else MEMORY_REPEATS
                result = memory.run_memory(scenario, repeats)
            elif isinstance(scenario, fleet.FleetScenario):
                result = fleet.run_fleet(scenario, ctx)
            elif isinstance(scenario, health.WallScenario):
                result = health.run_wall(scenario, ctx)
            elif isinstance(scenario, server.ServerScenario):
                result = server.run_server(scenario, ctx)
            elif isinstance(scenario, backup.BackupScenario):
                result = backup.run_backup(scenario, ctx)
            else:
                result = run_timing(scenario, ctx)
            results["scenarios"][scenario.name] = result
            echo("")
            echo(format_scenario(scenario.name, result))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        logging.disable(previous_disable)
    results["seconds"] = time.perf_counter() - started
    try:
        results["machine"]["loadavg_end"] = list(os.getloadavg())
    except OSError:  # pragma: no cover
        pass
    echo("")
    echo(format_summary(results))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp" + out.suffix)  # still matched by the .gitignore
        tmp.write_text(json.dumps(results, indent=1, default=str) + "\n")
        tmp.replace(out)
        echo(f"\nwrote {out} ({results['seconds']:.0f}s)")
    return results
