"""Checks of the machine and the process: disk, memory, CPU, file handles, threads, loop lag."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

from buttress.errors import ConfigError
from buttress.health import Status
from buttress.health.checks import _probes as probes
from buttress.health.checks import (
    cpu_check,
    disk_check,
    event_loop_check,
    file_handles_check,
    memory_check,
    threads_check,
)

from .conftest import Runner

# -- disk ---------------------------------------------------------------------------------------


async def test_disk_reports_percent_used_and_sizes(run: Runner, tmp_path: Path):
    """Usage of the path's filesystem in percent, sizes in MiB; a sync check (runs in a thread)."""
    check = disk_check(path=tmp_path, warn_above=100, fail_above=100)
    result = await run(check)
    assert result.status is Status.PASS
    assert result.observed_unit == "percent"
    assert 0 < result.observed_value <= 100
    assert result.details["path"] == str(tmp_path)
    assert result.details["total_mib"] >= result.details["free_mib"] > 0
    assert not check.is_async
    assert (check.key, check.component_type) == ("disk:utilization", "system")


async def test_disk_thresholds(run: Runner, tmp_path: Path):
    """Above warn_above warns, above fail_above fails (the defaults are 85 and 95)."""
    assert (await run(disk_check(path=tmp_path, warn_above=0))).status is Status.WARN
    failed = await run(disk_check(path=tmp_path, warn_above=0, fail_above=0))
    assert failed.status is Status.FAIL
    assert "(above 0%)" in failed.output


async def test_disk_missing_path_fails(run: Runner, tmp_path: Path):
    """A path that does not exist fails and names it."""
    missing = tmp_path / "nope"
    result = await run(disk_check(path=missing))
    assert result.status is Status.FAIL
    assert str(missing) in result.output


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"warn_above": 101}, "warn_above"),
        ({"fail_above": -1}, "fail_above"),
        ({"warn_above": 96}, "warn_above"),
        ({"path": 5}, "path"),
        ({"path": ""}, "path"),
        ({"ttl": -1}, "ttl"),
        ({"threshold": 5}, "threshold"),
    ],
)
def test_disk_options_are_validated(kwargs, field):
    """Bad or unknown options raise ConfigError naming the field (96 is above the default fail)."""
    with pytest.raises(ConfigError) as info:
        disk_check(**kwargs)
    assert info.value.field == field


# -- memory -------------------------------------------------------------------------------------


async def test_memory_reports_system_percent_and_rss(run: Runner):
    """System memory in percent, process RSS in MiB."""
    result = await run(memory_check(warn_above=100))
    assert result.status is Status.PASS
    assert result.observed_unit == "percent"
    assert 0 < result.observed_value <= 100
    assert result.details["rss_mib"] > 1
    assert result.details["total_mib"] >= result.details["available_mib"]


async def test_memory_rss_thresholds(run: Runner):
    """RSS above rss_warn_above_mb warns; above rss_fail_above_mb fails."""
    warned = await run(memory_check(warn_above=100, rss_warn_above_mb=1))
    failed = await run(memory_check(warn_above=100, rss_fail_above_mb=1))
    assert warned.status is Status.WARN
    assert "(above 1 MiB)" in warned.output
    assert failed.status is Status.FAIL


async def test_memory_system_thresholds(run: Runner):
    """System memory above warn_above warns; above fail_above fails."""
    assert (await run(memory_check(warn_above=0))).status is Status.WARN
    assert (await run(memory_check(fail_above=0, warn_above=0))).status is Status.FAIL


def test_proc_meminfo_agrees_with_psutil():
    """The /proc fallback reads the same figures as psutil, and None without /proc."""
    psutil = pytest.importorskip("psutil")
    if not os.path.exists("/proc/meminfo"):
        pytest.skip("no /proc on this system")
    fallback = probes.proc_meminfo()
    assert fallback is not None
    assert fallback.total == psutil.virtual_memory().total
    assert abs(fallback.percent - psutil.virtual_memory().percent) < 5
    assert probes.proc_meminfo("/nonexistent/meminfo") is None


def test_memory_options_are_validated():
    """rss thresholds are checked in order, naming the field."""
    with pytest.raises(ConfigError) as info:
        memory_check(rss_warn_above_mb=500, rss_fail_above_mb=100)
    assert info.value.field == "rss_warn_above_mb"


# -- CPU ----------------------------------------------------------------------------------------


def _burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_cpu_samples_without_blocking_the_loop(run: Runner):
    """The first run awaits its interval: other tasks keep running meanwhile."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    try:
        result = await run(cpu_check(interval=0.05, warn_above=100))
    finally:
        task.cancel()
    assert ticks >= 3
    assert result.status is Status.PASS
    assert result.observed_unit == "percent"
    assert 0 <= result.observed_value <= 100
    assert result.details["sample_seconds"] >= 0.05
    assert result.details["cpu_count"] >= 1


async def test_cpu_busy_machine_is_graded(run: Runner):
    """CPU burnt in a thread during the sample shows up and is graded by the thresholds."""
    check = cpu_check(interval=0.05, warn_above=0)
    burner = threading.Thread(target=_burn, args=(0.06,))
    burner.start()
    try:
        result = await run(check)
    finally:
        burner.join()
    assert result.observed_value > 0
    assert result.status is Status.WARN
    assert result.details["process_percent"] > 0


async def test_cpu_reuses_the_previous_sample(run: Runner):
    """A second run compares with the first run's sample instead of sampling afresh."""
    check = cpu_check(interval=0.05)
    await run(check)
    _burn(0.06)
    result = await run(check)
    # A fresh sample would span the 0.05 s interval; this one spans the burn since the last run.
    assert result.details["sample_seconds"] >= 0.06


def test_cpu_interval_must_be_shorter_than_the_timeout():
    """An interval that cannot fit in the timeout is a ConfigError on interval."""
    with pytest.raises(ConfigError) as info:
        cpu_check(interval=2, timeout=1)
    assert info.value.field == "interval"


def test_proc_stat_reads_cpu_times():
    """The /proc/stat fallback gives busy <= total."""
    if not os.path.exists("/proc/stat"):
        pytest.skip("no /proc on this system")
    found = probes.proc_cpu_times()
    assert found is not None
    assert 0 <= found[0] <= found[1]


# -- file handles -------------------------------------------------------------------------------


async def test_file_handles_count_against_the_soft_limit(run: Runner, tmp_path: Path):
    """Opening files raises the count; percent of RLIMIT_NOFILE is reported."""
    check = file_handles_check()
    before = await run(check)
    files = [open(tmp_path / f"f{i}", "w") for i in range(5)]  # noqa: SIM115
    try:
        after = await run(check)
    finally:
        for file in files:
            file.close()
    assert before.status is Status.PASS
    assert after.details["open"] == before.details["open"] + 5
    limit = after.details["limit"]
    assert after.observed_value == pytest.approx(after.details["open"] / limit * 100, abs=0.01)
    assert after.observed_unit == "percent"


async def test_file_handles_thresholds(run: Runner):
    """Above warn_above warns; above fail_above fails."""
    assert (await run(file_handles_check(warn_above=0))).status is Status.WARN
    assert (await run(file_handles_check(warn_above=0, fail_above=0))).status is Status.FAIL


# -- threads ------------------------------------------------------------------------------------


async def test_threads_counts_live_threads(run: Runner):
    """A started thread raises the count by one; OS threads are in details."""
    check = threads_check()
    before = await run(check)
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        during = await run(check)
    finally:
        release.set()
        worker.join()
    assert during.observed_value == before.observed_value + 1
    assert during.observed_unit == "threads"
    assert during.details["os_threads"] >= during.details["python_threads"]
    assert check.key == "threads:count"


async def test_threads_thresholds(run: Runner):
    """More threads than warn_above warns; than fail_above fails."""
    assert (await run(threads_check(warn_above=0))).status is Status.WARN
    assert (await run(threads_check(fail_above=0))).status is Status.FAIL


# -- event loop ---------------------------------------------------------------------------------


async def test_event_loop_lag_is_small_on_an_idle_loop(run: Runner):
    """An idle loop runs the probe callback at once: pass, lag in ms."""
    check = event_loop_check()
    result = await run(check)
    assert result.status is Status.PASS
    assert result.observed_unit == "ms"
    assert 0 <= result.observed_value < 100
    assert check.groups == frozenset({"liveness"})
    assert check.component_type == "system"
    assert check.key == "event_loop:lag"


def _block_repeatedly(loop: asyncio.AbstractEventLoop, times: int) -> None:
    """Block the loop for 30 ms, then queue another block, `times` times in all."""
    time.sleep(0.03)
    if times > 1:
        loop.call_soon(_block_repeatedly, loop, times - 1)


async def test_event_loop_blocked_loop_warns_or_fails(run: Runner):
    """A loop that keeps being blocked for 30 ms delays the probe past the thresholds."""
    loop = asyncio.get_running_loop()
    loop.call_soon(_block_repeatedly, loop, 3)
    warned = await run(event_loop_check(warn_above=20))
    loop.call_soon(_block_repeatedly, loop, 3)
    failed = await run(event_loop_check(warn_above=10, fail_above=20))
    assert warned.status is Status.WARN
    assert warned.observed_value >= 30
    assert failed.status is Status.FAIL
    assert "(above 20 ms)" in failed.output


def test_liveness_holds_only_system_checks():
    """A liveness group is refused for a non-system component type."""
    with pytest.raises(ConfigError) as info:
        event_loop_check(component_type="component")
    assert info.value.field == "groups"


async def test_event_loop_one_burst_is_not_a_slow_loop(run: Runner):
    """One blocking burst queued with the probe (as a health run starting its checks) passes."""
    loop = asyncio.get_running_loop()
    loop.call_soon(time.sleep, 0.03)
    result = await run(event_loop_check(warn_above=20))
    assert result.status is Status.PASS
