"""Metric families of the dead letter queues (``buttress.dlq``) attached to a registry.

The queues are found by kind (``dlq``). ``dlq_messages`` is read from the store at scrape time
(``stats()``: the whole queue, every process's records); the counters and the histogram are
this process's (``dlq.counters``: adds, worker outcomes and handler run times). Several queues
sharing a queue name add up. A store that cannot be read leaves its gauge rows out.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from buttress.errors import StoreError

if TYPE_CHECKING:
    from buttress.telemetry._families import Family, Items, Scrape

__all__ = ["dead_letter_queues"]

logger = logging.getLogger("buttress")

_STATUSES = ("pending", "retrying", "parked", "resolved", "discarded")


def dead_letter_queues(items: Items, scrape: Scrape) -> list[Family]:
    """Messages by queue and status, adds by reason, attempts by result, handler durations."""
    from buttress.dlq import DURATION_BUCKETS

    messages = scrape.family(
        "dlq_messages",
        "gauge",
        "Dead letters stored, by queue and status (pending, retrying, parked, resolved, "
        "discarded).",
        "queue",
        "status",
    )
    added = scrape.family(
        "dlq_added",
        "counter",
        "Dead letters added by this process, by queue and reason (their classification).",
        "queue",
        "reason",
    )
    processed = scrape.family(
        "dlq_processed",
        "counter",
        "Attempts by this process's workers, by queue and result (resolved, retried, parked, "
        "stale).",
        "queue",
        "result",
    )
    duration = scrape.family(
        "dlq_processing_duration_seconds",
        "histogram",
        "Time a handler took to re-process one dead letter.",
        "queue",
    )
    counts: dict[tuple[str, str], int] = {}
    adds: dict[tuple[str, str], int] = {}
    results: dict[tuple[str, str], int] = {}
    runs: dict[str, tuple[list[int], int, float]] = {}
    for _label, dlq in items:
        try:
            stats = dlq.stats()
        except StoreError as exc:
            logger.warning("dlq %s: no message counts for /metrics: %s", dlq.name, exc)
        else:
            for queue, by_status in stats.by_queue.items():
                for status in _STATUSES:
                    key = (queue, status)
                    counts[key] = counts.get(key, 0) + by_status.get(status, 0)
        added_now, processed_now = dlq.counters.snapshot()
        for key, value in added_now.items():
            adds[key] = adds.get(key, 0) + value
        for key, value in processed_now.items():
            results[key] = results.get(key, 0) + value
        for queue, histogram in dlq.counters.durations().items():
            buckets, count, total = runs.get(queue, ([0] * len(DURATION_BUCKETS), 0, 0.0))
            merged = [a + b for a, b in zip(buckets, histogram.buckets, strict=True)]
            runs[queue] = (merged, count + histogram.count, total + histogram.sum)
    messages.rows.extend((key, value) for key, value in sorted(counts.items()))
    added.rows.extend((key, value) for key, value in sorted(adds.items()))
    processed.rows.extend((key, value) for key, value in sorted(results.items()))
    for queue, (buckets, count, total) in sorted(runs.items()):
        ladder = (*zip(DURATION_BUCKETS, buckets, strict=True), (float("inf"), count))
        duration.histograms.append(((queue,), ladder, total))
    return [messages, added, processed, duration]
