"""``MemoryWatch``: samples of RSS and garbage-collector statistics, a forced collection above a
threshold, and a ``MemoryRising`` event when RSS keeps going up.

Each ``sample()`` reads the resident set size (``read_rss``: ``/proc/self/statm``, else psutil if
installed, else the peak from ``resource``) and the collector's statistics (``gc.get_count``,
``gc.get_stats``, ``gc.garbage``). Above ``collect_above`` bytes it runs ``gc.collect()`` (at most
once per ``collect_every`` seconds) and reads RSS again. When RSS has risen by more than
``min_increase`` bytes ``rising_samples`` times in a row, ``MemoryRising`` is emitted, and again
after every further ``rising_samples`` rises of the same streak. The reader and the clock are
injectable; a watch is a job for the scheduler (``scheduler.add("memory", watch, ...)``).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from buttress import _options as opt
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress.errors import ConfigError
from buttress.events import emit, wants
from buttress.resources._events import MemoryCollected, MemoryRising

__all__ = ["MemorySample", "MemoryWatch", "read_rss"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def read_rss() -> int:
    """This process's resident set size in bytes: ``/proc/self/statm`` on Linux, psutil where
    installed, else ``resource``'s peak RSS (the best the standard library offers elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        pass
    try:
        # By name, so that neither import time nor mypy depend on psutil (it has no stubs).
        psutil = importlib.import_module("psutil")
        return int(psutil.Process().memory_info().rss)
    except Exception:  # not installed, or no access
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) * (1 if sys.platform == "darwin" else 1024)


@dataclass(frozen=True, slots=True)
class MemorySample:
    """One sample: ``time`` (epoch s), ``rss`` bytes (after a forced collection, if any), the
    collector's ``counts`` and per-generation ``collections``, ``collected`` and
    ``uncollectable`` totals, ``garbage`` (len of ``gc.garbage``), whether a collection was
    ``forced``, the RSS it ``freed`` and the objects it ``found``, and the ``rising`` streak."""

    time: float
    rss: int
    counts: tuple[int, ...]
    collections: tuple[int, ...]
    collected: tuple[int, ...]
    uncollectable: tuple[int, ...]
    garbage: int
    forced: bool = False
    freed: int = 0
    found: int = 0
    rising: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The sample as plain data."""
        data = asdict(self)
        for key in ("counts", "collections", "collected", "uncollectable"):
            data[key] = list(data[key])
        return data


class MemoryWatch:
    """Samples memory when called (``watch()`` or ``watch.sample()``); see the module docstring.

    ``MemoryWatch(name="memory", *, collect_above=None, collect_every=60.0, rising_samples=5,
    min_increase=0, keep=120, reader=read_rss, clock=None)``: ``collect_above`` is RSS bytes
    (None: never force a collection), ``keep`` the number of samples kept in ``samples``.
    """

    def __init__(
        self,
        name: str = "memory",
        *,
        collect_above: int | None = None,
        collect_every: float | timedelta = 60.0,
        rising_samples: int = 5,
        min_increase: int = 0,
        keep: int = 120,
        reader: Callable[[], int] = read_rss,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError("name", name, "must be a non-empty string")
        if collect_above is not None:
            opt.integer("collect_above", collect_above, minimum=1)
        if not callable(reader):
            raise ConfigError("reader", reader, "must be a callable returning bytes")
        self.name = name
        self.collect_above = collect_above
        self.collect_every = opt.duration("collect_every", collect_every, allow_zero=True)
        self.rising_samples = opt.integer("rising_samples", rising_samples, minimum=1)
        self.min_increase = opt.integer("min_increase", min_increase, minimum=0)
        self._keep = opt.integer("keep", keep, minimum=1)
        self._reader = reader
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._lock = threading.Lock()
        self._samples: deque[MemorySample] = deque(maxlen=self._keep)
        self._last_forced: float | None = None
        self._streak = 0
        self._streak_start: tuple[float, int] | None = None  # (monotonic, rss) before the streak
        self._previous: tuple[float, int] | None = None
        self.forced_collections = 0
        self.rising_events = 0

    @property
    def samples(self) -> tuple[MemorySample, ...]:
        """The newest samples, oldest first (at most ``keep``)."""
        return tuple(self._samples)

    @property
    def last(self) -> MemorySample | None:
        """The newest sample, or None before the first."""
        return self._samples[-1] if self._samples else None

    def _should_collect(self, rss: int, now: float) -> bool:
        if self.collect_above is None or rss < self.collect_above:
            return False
        return self._last_forced is None or now - self._last_forced >= self.collect_every

    def sample(self) -> MemorySample:
        """Take one sample now (forcing a collection if above the threshold) and return it."""
        with self._lock:
            now = self._clock.monotonic()
            rss = int(self._reader())
            forced, freed, found = False, 0, 0
            if self._should_collect(rss, now):
                before = rss
                found = gc.collect()
                rss = int(self._reader())
                forced, freed = True, before - rss
                self._last_forced = now
                self.forced_collections += 1
                if wants(MemoryCollected):
                    emit(MemoryCollected(self.name, self._clock.time(), before, rss, found))
            rising = self._track(now, rss)
            stats = gc.get_stats()
            sample = MemorySample(
                time=self._clock.time(),
                rss=rss,
                counts=tuple(gc.get_count()),
                collections=tuple(int(s.get("collections", 0)) for s in stats),
                collected=tuple(int(s.get("collected", 0)) for s in stats),
                uncollectable=tuple(int(s.get("uncollectable", 0)) for s in stats),
                garbage=len(gc.garbage),
                forced=forced,
                freed=freed,
                found=found,
                rising=rising,
            )
            self._samples.append(sample)
            return sample

    def __call__(self) -> MemorySample:
        """``sample()``, so that the watch itself is a scheduler job."""
        return self.sample()

    def _track(self, now: float, rss: int) -> int:
        previous = self._previous
        self._previous = (now, rss)
        if previous is None or rss - previous[1] <= self.min_increase:
            self._streak, self._streak_start = 0, None
            return 0
        if self._streak == 0:
            self._streak_start = previous
        self._streak += 1
        if self._streak % self.rising_samples == 0 and self._streak_start is not None:
            self.rising_events += 1
            began, base = self._streak_start
            emit(
                MemoryRising(
                    self.name, self._clock.time(), rss, rss - base, self._streak, now - began
                )
            )
        return self._streak

    def snapshot(self) -> dict[str, Any]:
        """The settings, counters and newest sample as plain data (for reports and dashboards)."""
        last = self.last
        return {
            "name": self.name,
            "collect_above": self.collect_above,
            "rising_samples": self.rising_samples,
            "forced_collections": self.forced_collections,
            "rising_events": self.rising_events,
            "last": None if last is None else last.to_dict(),
        }

    def __repr__(self) -> str:
        return f"MemoryWatch({self.name!r}, collect_above={self.collect_above!r})"
