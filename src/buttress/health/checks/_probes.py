"""Readings of the machine and the process: psutil when it is installed, else ``/proc``.

Each reader returns None when neither source exists (for example macOS without psutil), so a
check can say what it could not measure instead of raising.
"""

from __future__ import annotations

import importlib
import os
import threading
from types import ModuleType
from typing import NamedTuple

__all__ = [
    "CpuSample",
    "Memory",
    "cpu_sample",
    "fd_limit",
    "memory",
    "open_fds",
    "os_threads",
    "proc_cpu_times",
    "proc_meminfo",
    "proc_status",
    "python_threads",
    "rss_bytes",
]

_FD_DIRS = ("/proc/self/fd", "/dev/fd")


def _psutil() -> ModuleType | None:
    # Imported by name so that neither import time nor mypy depend on psutil (it has no stubs).
    try:
        return importlib.import_module("psutil")
    except ImportError:
        return None


class Memory(NamedTuple):
    """System memory: percent used, total and available bytes."""

    percent: float
    total: int
    available: int


def memory() -> Memory | None:
    """System memory in use (psutil, else ``/proc/meminfo``)."""
    psutil = _psutil()
    if psutil is not None:
        vm = psutil.virtual_memory()
        return Memory(float(vm.percent), int(vm.total), int(vm.available))
    return proc_meminfo()


def proc_meminfo(path: str = "/proc/meminfo") -> Memory | None:
    """System memory from ``/proc/meminfo`` (MemAvailable counts reclaimable cache as free)."""
    try:
        with open(path, encoding="ascii") as file:
            fields = dict(line.split(":", 1) for line in file if ":" in line)
    except OSError:
        return None
    try:
        total = int(fields["MemTotal"].split()[0]) * 1024
        available = int(fields["MemAvailable"].split()[0]) * 1024
    except (KeyError, ValueError, IndexError):
        return None
    if total <= 0:
        return None
    return Memory(round((total - available) / total * 100.0, 1), total, available)


def proc_status() -> dict[str, str]:
    """``/proc/self/status`` as a dict (empty where there is no ``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as file:
            return {k: v.strip() for k, v in (line.split(":", 1) for line in file if ":" in line)}
    except OSError:
        return {}


def rss_bytes() -> int | None:
    """The process's resident set size in bytes (psutil, else ``/proc/self/status``)."""
    psutil = _psutil()
    if psutil is not None:
        return int(psutil.Process().memory_info().rss)
    value = proc_status().get("VmRSS", "")
    parts = value.split()
    if parts and parts[0].isdigit():
        return int(parts[0]) * 1024
    return None


class CpuSample(NamedTuple):
    """Cumulative CPU seconds of the machine (busy, total) and of this process."""

    busy: float
    total: float
    process: float


def cpu_sample() -> CpuSample | None:
    """Cumulative CPU times now (psutil, else ``/proc/stat``); compare two to get a percent."""
    times = os.times()
    process = times.user + times.system
    psutil = _psutil()
    if psutil is not None:
        cpu = psutil.cpu_times()
        idle = cpu.idle + getattr(cpu, "iowait", 0.0)
        # guest time is already counted in user time (as psutil itself does on Linux)
        total = sum(cpu) - getattr(cpu, "guest", 0.0) - getattr(cpu, "guest_nice", 0.0)
        return CpuSample(total - idle, total, process)
    found = proc_cpu_times()
    if found is None:
        return None
    busy, total = found
    return CpuSample(busy, total, process)


def proc_cpu_times(path: str = "/proc/stat") -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from ``/proc/stat``."""
    try:
        with open(path, encoding="ascii") as file:
            first = file.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    values = [float(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    while len(values) < 8:
        values.append(0.0)
    total = sum(values)
    return total - values[3] - values[4], total


def open_fds() -> int | None:
    """Open file descriptors of this process (``/proc/self/fd``, ``/dev/fd``, else psutil)."""
    for directory in _FD_DIRS:
        try:
            # listing opens one descriptor of its own, which appears in the listing
            return max(len(os.listdir(directory)) - 1, 0)
        except OSError:
            continue
    psutil = _psutil()
    if psutil is not None and hasattr(psutil.Process, "num_fds"):
        return int(psutil.Process().num_fds())
    return None


def fd_limit() -> int | None:
    """The soft limit on open files (RLIMIT_NOFILE), or None when unlimited or unknown."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return None
    return int(soft)


def os_threads() -> int | None:
    """Threads of this process as the OS sees them (C extensions' threads included)."""
    value = proc_status().get("Threads", "")
    if value.isdigit():
        return int(value)
    psutil = _psutil()
    if psutil is not None:
        return int(psutil.Process().num_threads())
    return None


def python_threads() -> int:
    """Live ``threading.Thread`` objects (``threading.active_count()``)."""
    return threading.active_count()
