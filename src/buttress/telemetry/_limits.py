"""Metric families of rate limiters, load shedders and work queues (``buttress.ratelimit``).

Registry kinds ``limiter`` (``RateLimiter``), ``concurrency`` (``ConcurrencyLimiter`` and
``AdaptiveConcurrency``), ``throttle`` (``AdaptiveThrottle``) and ``queue`` (``WorkQueue``), read
from their snapshots at scrape time. ``load_shed_total`` and ``load_shedding`` are fed by the
last three kinds: the scrape merges families of one name (``_prometheus.merge``), and objects of
different kinds sharing a name add up in one series.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from buttress.telemetry._families import Family, Items, Scrape

__all__ = ["concurrency_limiters", "rate_limiters", "throttles", "work_queues"]

_SHED_HELP = (
    "Calls or items refused to shed load: by concurrency limiters (limit reached), adaptive "
    "throttles (local rejection) and work queues (full, or pushed out by a higher priority)."
)
_SHEDDING_HELP = "1 while the policy is shedding load (a refusal less than 1 s ago), else 0."
QUEUE_OUTCOMES = ("processed", "failed", "expired", "refused", "evicted")


def _shedding(scrape: Scrape) -> tuple[Family, Family]:
    shed = scrape.family("load_shed", "counter", _SHED_HELP, "name")
    shedding = scrape.family("load_shedding", "gauge", _SHEDDING_HELP, "name")
    return shed, shedding


def rate_limiters(items: Items, scrape: Scrape) -> list[Family]:
    """Decisions by result, keys held, callers waiting, and the quota."""
    decisions = scrape.family(
        "ratelimit_decisions",
        "counter",
        "Rate limiter decisions by result: allowed, refused (a refused request takes nothing).",
        "name",
        "result",
    )
    keys = scrape.family(
        "ratelimit_keys",
        "gauge",
        "Keys the rate limiter holds state for (idle ones expire).",
        "name",
    )
    waiting = scrape.family(
        "ratelimit_waiting", "gauge", "Callers waiting their turn at the rate limiter.", "name"
    )
    limit = scrape.family(
        "ratelimit_limit",
        "gauge",
        "The rate limiter's quota in whole units (the RateLimit-Limit header).",
        "name",
    )
    for label, limiter in items:
        snap = limiter.snapshot()
        key = (label,)
        decisions.rows.append(((label, "allowed"), snap.allowed))
        decisions.rows.append(((label, "refused"), snap.refused))
        keys.rows.append((key, snap.keys))
        waiting.rows.append((key, snap.waiting))
        limit.rows.append((key, limiter.algorithm.limit))
    return [decisions, keys, waiting, limit]


def concurrency_limiters(items: Items, scrape: Scrape) -> list[Family]:
    """Calls in flight, the current limit, and calls shed."""
    in_flight = scrape.family(
        "concurrency_in_flight", "gauge", "Calls running through the concurrency limiter.", "name"
    )
    limit = scrape.family(
        "concurrency_limit",
        "gauge",
        "Calls the concurrency limiter admits at once now (adaptive limiters move it).",
        "name",
    )
    shed, shedding = _shedding(scrape)
    for label, limiter in items:
        snap = limiter.snapshot()
        key = (label,)
        in_flight.rows.append((key, snap.in_flight))
        limit.rows.append((key, snap.limit))
        shed.rows.append((key, snap.rejected))
        shedding.rows.append((key, 1 if snap.shedding else 0))
    return [in_flight, limit, shed, shedding]


def throttles(items: Items, scrape: Scrape) -> list[Family]:
    """The local rejection probability, and calls shed."""
    probability = scrape.family(
        "throttle_rejection_probability",
        "gauge",
        "Probability that the adaptive throttle refuses the next call locally.",
        "name",
    )
    shed, shedding = _shedding(scrape)
    for label, throttle in items:
        snap = throttle.snapshot()
        key = (label,)
        probability.rows.append((key, snap.probability))
        shed.rows.append((key, snap.rejected))
        shedding.rows.append((key, 1 if snap.shedding else 0))
    return [probability, shed, shedding]


def work_queues(items: Items, scrape: Scrape) -> list[Family]:
    """Depth, age of the oldest item, workers, items by outcome, and items shed."""
    depth = scrape.family("work_queue_depth", "gauge", "Items waiting in the work queue.", "name")
    age = scrape.family(
        "work_queue_oldest_age_seconds",
        "gauge",
        "How long the oldest waiting item has waited (0 when the queue is empty).",
        "name",
    )
    capacity = scrape.family(
        "work_queue_max_size", "gauge", "Items the work queue holds at most.", "name"
    )
    workers = scrape.family("work_queue_workers", "gauge", "Workers running now.", "name")
    busy = scrape.family(
        "work_queue_busy_workers", "gauge", "Workers handling an item now.", "name"
    )
    outcomes = scrape.family(
        "work_queue_items",
        "counter",
        "Items by outcome: processed, failed (the handler raised), expired (past their "
        "deadline, never run), refused (the queue was full), evicted (pushed out by a higher "
        "priority).",
        "name",
        "outcome",
    )
    shed, shedding = _shedding(scrape)
    for label, queue in items:
        snap = queue.snapshot()
        key = (label,)
        depth.rows.append((key, snap.depth))
        age.rows.append((key, snap.oldest_age or 0.0))
        capacity.rows.append((key, snap.max_size))
        workers.rows.append((key, snap.workers))
        busy.rows.append((key, snap.busy))
        for outcome in QUEUE_OUTCOMES:
            outcomes.rows.append(((label, outcome), getattr(snap, outcome)))
        shed.rows.append((key, snap.refused + snap.evicted))
        shedding.rows.append((key, 1 if snap.shedding else 0))
    return [depth, age, capacity, workers, busy, outcomes, shed, shedding]
