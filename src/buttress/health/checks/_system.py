"""Checks of the machine and the process: disk, memory, CPU, file handles, threads, loop lag."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, Unpack

from buttress import _options as opt
from buttress.errors import ConfigError
from buttress.health._model import Check, CheckResult, Status, grade
from buttress.health.checks import _probes as probes
from buttress.health.checks._common import CheckOptions, common, mib, over, thresholds, worst

__all__ = [
    "cpu_check",
    "disk_check",
    "event_loop_check",
    "file_handles_check",
    "memory_check",
    "threads_check",
]

_SYSTEM = "system"
_MAX_SAMPLE_AGE = 300.0  # an older CPU sample is dropped: its average would say little about now


def _percent(part: float, whole: float) -> float:
    return round(part / whole * 100.0, 2) if whole > 0 else 0.0


def disk_check(
    name: str = "disk",
    path: str | os.PathLike[str] = "/",
    *,
    warn_above: float | None = 85.0,
    fail_above: float | None = 95.0,
    **options: Unpack[CheckOptions],
) -> Check:
    """Disk usage of the filesystem holding ``path``: percent used (``shutil.disk_usage``).

    Thresholds in percent (default warn above 85, fail above 95); a missing path fails. Runs in a
    thread, so a hung network mount cannot block the event loop. Details: path, total, used and
    free MiB. Defaults: component_type "system", measurement "utilization".
    """
    base = common(name, options, component_type=_SYSTEM, measurement="utilization")
    warn, fail = thresholds(warn_above, fail_above, maximum=100)
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise ConfigError("path", path, "must be a filesystem path")
    where = os.fspath(path)

    def disk_usage() -> CheckResult:
        """Percent of the filesystem in use (free space counts what unprivileged users get)."""
        try:
            usage = shutil.disk_usage(where)
        except OSError as exc:
            return CheckResult.failed(f"{where}: {exc.strerror or exc}", details={"path": where})
        percent = _percent(usage.used, usage.used + usage.free)
        status = grade(percent, warn_above=warn, fail_above=fail)
        details = {
            "path": where,
            "total_mib": mib(usage.total),
            "used_mib": mib(usage.used),
            "free_mib": mib(usage.free),
        }
        output = f"{where}: {percent:g}% used, {mib(usage.free):g} MiB free"
        return CheckResult(
            status, output + over(status, warn, fail, "%"), percent, "percent", details
        )

    return base.check(disk_usage)


def memory_check(
    name: str = "memory",
    *,
    warn_above: float | None = 90.0,
    fail_above: float | None = None,
    rss_warn_above_mb: float | None = None,
    rss_fail_above_mb: float | None = None,
    **options: Unpack[CheckOptions],
) -> Check:
    """System memory in use (percent) and this process's RSS (MiB, in details).

    ``warn_above``/``fail_above``: system memory percent (default warn above 90, fail none);
    ``rss_warn_above_mb``/``rss_fail_above_mb``: RSS in MiB (default none). Reads psutil when
    installed, else ``/proc``. Defaults: component_type "system", measurement "utilization".
    """
    base = common(name, options, component_type=_SYSTEM, measurement="utilization")
    warn, fail = thresholds(warn_above, fail_above, maximum=100)
    rss_warn, rss_fail = thresholds(
        rss_warn_above_mb,
        rss_fail_above_mb,
        warn_field="rss_warn_above_mb",
        fail_field="rss_fail_above_mb",
    )

    async def memory_usage() -> CheckResult:
        """System memory percent and process RSS, each against its thresholds."""
        system = probes.memory()
        rss = probes.rss_bytes()
        details: dict[str, Any] = {}
        parts: list[str] = []
        statuses: list[Status] = []
        if system is not None:
            status = grade(system.percent, warn_above=warn, fail_above=fail)
            statuses.append(status)
            details["total_mib"] = mib(system.total)
            details["available_mib"] = mib(system.available)
            parts.append(f"{system.percent:g}% of memory used" + over(status, warn, fail, "%"))
        if rss is not None:
            rss_mib = mib(rss)
            status = grade(rss_mib, warn_above=rss_warn, fail_above=rss_fail)
            statuses.append(status)
            details["rss_mib"] = rss_mib
            parts.append(f"process RSS {rss_mib:g} MiB" + over(status, rss_warn, rss_fail, "MiB"))
        if not parts:
            return CheckResult.warned("memory statistics unavailable (install psutil)")
        percent = system.percent if system is not None else None
        return CheckResult(worst(*statuses), "; ".join(parts), percent, "percent", details)

    return base.check(memory_usage)


def cpu_check(
    name: str = "cpu",
    *,
    interval: float = 0.5,
    warn_above: float | None = 90.0,
    fail_above: float | None = None,
    **options: Unpack[CheckOptions],
) -> Check:
    """Machine CPU in use (percent of all cores), sampled without blocking the event loop.

    Each run compares CPU times with the previous run's (psutil, else ``/proc/stat``); the first
    run, or one within ``interval`` seconds of the last (default 0.5), awaits the rest of
    ``interval`` with ``asyncio.sleep``. Thresholds in percent (default warn above 90, fail none).
    Details: the process's CPU percent (of one core), core count, load average. Defaults:
    component_type "system", measurement "utilization".
    """
    base = common(name, options, component_type=_SYSTEM, measurement="utilization")
    warn, fail = thresholds(warn_above, fail_above, maximum=100)
    seconds = opt.duration("interval", interval)
    if seconds >= base.timeout:
        raise ConfigError("interval", interval, f"must be shorter than timeout ({base.timeout:g}s)")
    return base.check(_Cpu(seconds, warn, fail).run)


@dataclass(slots=True)
class _Cpu:
    interval: float
    warn: float | None
    fail: float | None
    last: tuple[float, probes.CpuSample] | None = field(default=None)

    async def run(self) -> CheckResult:
        """CPU percent since the previous sample, at least ``interval`` seconds ago."""
        now = time.monotonic()
        first = self.last
        if first is None or now - first[0] > _MAX_SAMPLE_AGE:
            sample = probes.cpu_sample()
            if sample is None:
                return CheckResult.warned("CPU statistics unavailable (install psutil)")
            first = (now, sample)
        wait = self.interval - (now - first[0])
        if wait > 0:
            await asyncio.sleep(wait)
        end = probes.cpu_sample()
        if end is None:
            return CheckResult.warned("CPU statistics unavailable (install psutil)")
        end_time = time.monotonic()
        self.last = (end_time, end)
        start_time, start = first
        percent = _percent(end.busy - start.busy, end.total - start.total)
        status = grade(percent, warn_above=self.warn, fail_above=self.fail)
        details: dict[str, Any] = {
            "process_percent": _percent(end.process - start.process, end_time - start_time),
            "cpu_count": os.cpu_count(),
            "sample_seconds": round(end_time - start_time, 3),
        }
        if hasattr(os, "getloadavg"):
            details["load_average"] = [round(v, 2) for v in os.getloadavg()]
        output = f"CPU {percent:g}% used" + over(status, self.warn, self.fail, "%")
        return CheckResult(status, output, percent, "percent", details)


def file_handles_check(
    name: str = "file_handles",
    *,
    warn_above: float | None = 80.0,
    fail_above: float | None = 95.0,
    **options: Unpack[CheckOptions],
) -> Check:
    """Open file descriptors as a percent of the soft limit (``RLIMIT_NOFILE``).

    Thresholds in percent (default warn above 80, fail above 95). Details: open descriptors and
    the limit. Defaults: component_type "system", measurement "utilization".
    """
    base = common(name, options, component_type=_SYSTEM, measurement="utilization")
    warn, fail = thresholds(warn_above, fail_above, maximum=100)

    async def file_handles() -> CheckResult:
        """Open descriptors against the soft limit."""
        count = probes.open_fds()
        limit = probes.fd_limit()
        details = {"open": count, "limit": limit}
        if count is None:
            return CheckResult.warned("open file descriptors unknown", details=details)
        if limit is None:
            return CheckResult.passed(f"{count} file descriptors open, no limit", details=details)
        percent = _percent(count, limit)
        status = grade(percent, warn_above=warn, fail_above=fail)
        output = f"{count} of {limit} file descriptors open ({percent:g}%)"
        return CheckResult(
            status, output + over(status, warn, fail, "%"), percent, "percent", details
        )

    return base.check(file_handles)


def threads_check(
    name: str = "threads",
    *,
    warn_above: float | None = None,
    fail_above: float | None = None,
    **options: Unpack[CheckOptions],
) -> Check:
    """Python threads alive (``threading.active_count()``) against thresholds (default none).

    Details: the OS thread count too (C extensions' threads included). Defaults:
    component_type "system", measurement "count".
    """
    base = common(name, options, component_type=_SYSTEM, measurement="count")
    warn, fail = thresholds(warn_above, fail_above)

    async def thread_count() -> CheckResult:
        """Python threads, graded; OS threads as a detail."""
        count = probes.python_threads()
        status = grade(count, warn_above=warn, fail_above=fail)
        details = {"python_threads": count, "os_threads": probes.os_threads()}
        output = f"{count} threads" + over(status, warn, fail, "threads")
        return CheckResult(status, output, count, "threads", details)

    return base.check(thread_count)


def event_loop_check(
    name: str = "event_loop",
    *,
    warn_above: float | None = 100.0,
    fail_above: float | None = 1000.0,
    **options: Unpack[CheckOptions],
) -> Check:
    """Event-loop lag: how late a ``loop.call_soon`` callback runs after it was scheduled (ms).

    A busy or blocked loop runs it late. The median of three samples in a row is reported, so
    one burst of work queued at the same moment (the health run itself starting its checks) is
    not mistaken for a slow loop, while a loop that keeps being blocked shows. Thresholds in ms
    (default warn above 100, fail above 1000). Defaults: component_type "system", measurement
    "lag", groups {"liveness"}.
    """
    base = common(name, options, component_type=_SYSTEM, measurement="lag", groups=("liveness",))
    warn, fail = thresholds(warn_above, fail_above)

    async def loop_lag() -> CheckResult:
        """Schedule a callback, await it, and grade how late it ran."""
        loop = asyncio.get_running_loop()
        samples = []
        for _ in range(3):
            ran: asyncio.Future[float] = loop.create_future()
            scheduled = time.perf_counter()
            loop.call_soon(_mark, ran)
            samples.append(await ran - scheduled)
        lag = round(sorted(samples)[1] * 1000.0, 3)
        status = grade(lag, warn_above=warn, fail_above=fail)
        output = f"event loop lag {lag:g} ms" + over(status, warn, fail)
        return CheckResult(status, output, lag, "ms", {"loop": type(loop).__name__})

    return base.check(loop_lag)


def _mark(ran: asyncio.Future[float]) -> None:
    if not ran.done():  # the check may have timed out and gone
        ran.set_result(time.perf_counter())
