"""Plain counters a dead letter queue keeps for metrics, read at scrape time (nothing pushed).

``added[(queue, reason)]`` counts records added by classification; ``processed[(queue,
result)]`` counts worker attempts by result (resolved, retried, parked, stale); ``durations``
holds, per queue, a cumulative histogram of handler run times over ``DURATION_BUCKETS``.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DURATION_BUCKETS", "Counters", "DurationHistogram"]

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds in seconds of the processing-duration buckets (Prometheus defaults and more)."""


@dataclass(frozen=True, slots=True)
class DurationHistogram:
    """``buckets[i]``: runs that took at most ``DURATION_BUCKETS[i]`` (cumulative); ``count``
    and ``sum`` (seconds) over all runs."""

    buckets: tuple[int, ...]
    count: int
    sum: float


class Counters:
    """The counters of one queue; thread-safe."""

    __slots__ = ("_durations", "_lock", "added", "processed")

    def __init__(self) -> None:
        self.added: Counter[tuple[str, str]] = Counter()
        self.processed: Counter[tuple[str, str]] = Counter()
        self._durations: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def count_added(self, queue: str, reason: str, n: int) -> None:
        """``n`` records were added to ``queue`` with classification ``reason``."""
        with self._lock:
            self.added[(queue, reason)] += n

    def count_processed(self, results: Iterable[tuple[str, str, float | None]]) -> None:
        """Attempts ended: each ``(queue, result, seconds the handler ran or None)``."""
        with self._lock:
            processed, durations = self.processed, self._durations
            for queue, result, seconds in results:
                processed[(queue, result)] += 1
                if seconds is None:
                    continue
                # [bucket counts..., count, sum]
                row = durations.get(queue)
                if row is None:
                    row = durations[queue] = [0.0] * (len(DURATION_BUCKETS) + 2)
                index = bisect.bisect_left(DURATION_BUCKETS, seconds)
                if index < len(DURATION_BUCKETS):
                    row[index] += 1
                row[-2] += 1
                row[-1] += seconds

    def durations(self) -> dict[str, DurationHistogram]:
        """The processing-time histogram of each queue."""
        with self._lock:
            out = {}
            for queue, row in self._durations.items():
                running, cumulative = 0, []
                for value in row[: len(DURATION_BUCKETS)]:
                    running += int(value)
                    cumulative.append(running)
                out[queue] = DurationHistogram(tuple(cumulative), int(row[-2]), row[-1])
            return out

    def snapshot(self) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        """Copies of ``added`` and ``processed``."""
        with self._lock:
            return dict(self.added), dict(self.processed)
