"""bench/ stays runnable: every scenario runs with tiny counts. No timing is asserted here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bench import SCENARIOS, run, select
from bench.__main__ import main
from bench._harness import Config, Contender, Ctx, Prepared, Target, TimingScenario, run_timing

QUICK = Config(quick=True, quick_n=3)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """Every scenario, run once with tiny counts, and the JSON file it wrote."""
    out = tmp_path_factory.mktemp("bench") / "latest.json"
    return run(config=QUICK, out=out, echo=lambda _: None), out


def test_every_scenario_runs(smoke: tuple[dict[str, Any], Path]) -> None:
    """Each registered scenario has a result, with every one of its contenders."""
    results, _ = smoke
    assert list(results["scenarios"]) == [s.name for s in SCENARIOS]
    for scenario in SCENARIOS:
        result = results["scenarios"][scenario.name]
        if scenario.kind == "wall":
            assert result["runs"]
            assert all(seconds > 0 for seconds in result["runs"])
            continue
        labels = [c.label for c in scenario.contenders]
        assert list(result["contenders"]) == labels


def test_timing_numbers_are_positive(smoke: tuple[dict[str, Any], Path]) -> None:
    """Every timing contender ran (status ok) and produced positive loop counts and ns values."""
    results, _ = smoke
    for name, result in results["scenarios"].items():
        if result["kind"] != "timing":
            continue
        for label, entry in result["contenders"].items():
            assert entry["status"] == "ok", (name, label, entry.get("reason"))
            assert entry["n"] > 0
            assert len(entry["samples"]) == result["repeats"] == 1
            assert all(v > 0 for v in entry["samples"])
            assert entry["median"] > 0
            assert entry["min"] > 0


def test_memory_numbers_are_positive(smoke: tuple[dict[str, Any], Path]) -> None:
    """Every breaker in the memory scenario was measured built and filled, in bytes."""
    results, _ = smoke
    memory = results["scenarios"]["memory.breaker"]
    assert memory["kind"] == "memory"
    for label, entry in memory["contenders"].items():
        assert entry["status"] == "ok", (label, entry.get("reason"))
        assert entry["constructed_median"] > 0
        assert entry["filled_median"] > 0


def test_ratelimit_memory_holds_every_key(smoke: tuple[dict[str, Any], Path]) -> None:
    """The keyed limiters of the rate-limit memory scenario hold all 100,000 keys, in bytes."""
    results, _ = smoke
    memory = results["scenarios"]["memory.ratelimit.keys"]
    for label, entry in memory["contenders"].items():
        assert entry["status"] == "ok", (label, entry.get("reason"))
        assert entry["constructed_median"] > 100_000
        assert entry["state_after"] == "100000 keys"


def test_ratelimit_redis_measures_lease_over_admission(smoke: tuple[dict[str, Any], Path]) -> None:
    """The Redis rate-limit scenario reports lease mode's over-admission for 1 and 4 processes."""
    results, _ = smoke
    measured = results["scenarios"]["ratelimit.redis"]["info"]["over_admission"]
    assert set(measured) == {"1 process", "4 processes"}
    assert all(entry["admitted"] > 0 and entry["bound"] > 0 for entry in measured.values())


def test_targets_carry_a_verdict(smoke: tuple[dict[str, Any], Path]) -> None:
    """Each target has a positive value and a verdict; which verdict is not this test's business."""
    results, _ = smoke
    verdicts = [v for r in results["scenarios"].values() for v in r["targets"]]
    assert verdicts
    for verdict in verdicts:
        assert verdict["value"] > 0
        expected = {"info"} if verdict["limit"] is None else {"PASS", "MISS"}
        assert verdict["status"] in expected


def test_json_file_holds_everything(smoke: tuple[dict[str, Any], Path]) -> None:
    """The JSON file holds the machine, the config and every scenario's per-repeat numbers."""
    results, out = smoke
    data = json.loads(out.read_text())
    assert {"python", "platform", "cpu_count", "versions"} <= set(data["machine"])
    assert data["config"]["quick"] is True
    assert list(data["scenarios"]) == list(results["scenarios"])
    closed = data["scenarios"]["breaker.closed.sync"]["contenders"]["buttress .call"]
    assert (
        closed["samples"]
        == results["scenarios"]["breaker.closed.sync"]["contenders"]["buttress .call"]["samples"]
    )


def test_only_selects_by_substring() -> None:
    """--only keeps the scenarios whose name contains the given text."""
    names = [s.name for s in select(["breaker.open"])]
    assert names == ["breaker.open.sync", "breaker.open.async"]
    assert select([]) == list(SCENARIOS)


def test_missing_module_is_reported_unavailable(tmp_path: Path) -> None:
    """A contender whose import fails is reported unavailable, and its targets N/A, not a crash."""

    def missing(ctx: Ctx) -> Prepared:
        raise ImportError("No module named 'buttress.nothing'")

    def present(ctx: Ctx) -> Prepared:
        return Prepared(lambda n: n + 1)

    scenario = TimingScenario(
        name="smoke.unavailable",
        title="a scenario with a missing module",
        contenders=(
            Contender("gone", "buttress", "missing()", missing),
            Contender("here", "python", "present()", present),
        ),
        targets=(Target("gone", "here", 0.5), Target("gone", None, 100.0)),
    )
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        result = run_timing(scenario, Ctx(loop, QUICK))
    finally:
        loop.close()
    assert result["contenders"]["gone"]["status"] == "unavailable"
    assert result["contenders"]["here"]["status"] == "ok"
    assert [t["status"] for t in result["targets"]] == ["N/A", "N/A"]


def test_command_line_quick_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m bench --quick --only baseline --out PATH` prints a table and writes the file."""
    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", "baseline", "--out", str(out)]) == 0
    assert "empty loop" in capsys.readouterr().out
    assert list(json.loads(out.read_text())["scenarios"]) == ["baseline"]


def test_flag_scenarios_measure_buttress_and_openfeature(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    """The flag scenarios ran buttress and the OpenFeature in-memory peer, with the 1 µs target."""
    results, _ = smoke
    for name in ("flags.boolean", "flags.rollout", "flags.targeted"):
        result = results["scenarios"][name]
        assert result["contenders"]["buttress"]["status"] == "ok"
        assert result["contenders"]["openfeature in-memory"]["status"] == "ok"
        assert result["targets"][0]["limit"] == 1000.0


def test_dlq_scenarios_report_their_targets(smoke: tuple[dict[str, Any], Path]) -> None:
    """The dead letter queue's four scenarios ran every contender and judged each target."""
    results, _ = smoke
    names = [name for name in results["scenarios"] if name.startswith("dlq.")]
    assert names == [
        "dlq.sqlite.add_many",
        "dlq.sqlite.concurrent",
        "dlq.redis.add_many",
        "dlq.worker",
    ]
    for name in names:
        result = results["scenarios"][name]
        assert all(entry["status"] == "ok" for entry in result["contenders"].values()), name
        assert result["targets"]
        assert all(t["status"] in {"PASS", "MISS", "info"} for t in result["targets"]), name


def test_backup_scenario_measures_buttress_and_the_tools(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    """The backup scenario timed buttress against tar and zstd and measured peak memory."""
    results, _ = smoke
    result = results["scenarios"]["backup.tree"]
    assert [t["peer"] for t in result["targets"]] == [
        "tar | zstd -3",
        "zstd -d | tar -x",
        "full backup",
        None,
        None,
    ]
    assert result["info"]["rss_backup_MiB"] > 0
    assert result["info"]["stored_MiB"] > 0
