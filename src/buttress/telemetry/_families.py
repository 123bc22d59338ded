"""Metric families as plain rows, one function per policy kind, read from counters at scrape time.

A family function takes the ``(label, policy)`` pairs of one kind (``label`` is the policy's name,
redacted) and a ``Scrape`` and returns ``Family`` objects: a name, a type, a help text, label names
and rows of ``(label values, value)``. Nothing here imports ``prometheus_client``: the same rows
feed the text writer (``_exposition.write``) and the collector's ``collect()``.

To add a policy kind (rate limiters, degradation, DLQ, backups): write one function like
``bulkheads`` below and add a ``Kind`` to ``KINDS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from buttress.breaker import BreakerState, CircuitBreaker
from buttress.bulkhead import Bulkhead
from buttress.chaos import Chaos
from buttress.degrade import DegradationManager
from buttress.fallback import Fallback
from buttress.hedge import Hedge
from buttress.ratelimit import AdaptiveThrottle, RateLimiter
from buttress.ratelimit._concurrency import SlotLimiter
from buttress.retry import Retry, RetryBudget
from buttress.telemetry._backup import backups
from buttress.telemetry._dlq import dead_letter_queues
from buttress.telemetry._http import http_clients
from buttress.telemetry._limits import concurrency_limiters, rate_limiters, throttles, work_queues
from buttress.timeout import Timeout

if TYPE_CHECKING:
    from buttress.health import Check, CheckResult

__all__ = [
    "COUNTER",
    "GAUGE",
    "HEALTH_STATUS_VALUES",
    "HISTOGRAM",
    "KINDS",
    "Family",
    "Kind",
    "Scrape",
    "health_checks",
]

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"

Row = tuple[tuple[str, ...], float]
HistogramRow = tuple[tuple[str, ...], tuple[tuple[float, int], ...], float]
"""(label values, cumulative buckets as (upper bound, count) ending with +Inf, sum)."""
Transitions = Callable[[], list[tuple[tuple[str, str, str], int]]]

BREAKER_STATES = tuple(state.value for state in BreakerState)
BREAKER_OUTCOMES = ("success", "failure", "ignored", "rejected")
HEALTH_STATUS_VALUES = {"pass": 2, "warn": 1, "unknown": 1, "fail": 0}
"""``health_check_status``: 2 pass, 1 warn (or not run yet), 0 fail."""
HEALTH_GROUPS = ("liveness", "readiness", "startup")


@dataclass(slots=True)
class Family:
    """One metric family: ``name`` (a counter's without ``_total``), ``type``, ``help``,
    ``labels`` (names) and ``rows`` of (label values, value); a histogram has ``histograms``
    instead of rows."""

    name: str
    type: str
    help: str
    labels: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)
    histograms: list[HistogramRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Scrape:
    """What every family function gets: the metric name ``prefix`` and the breaker transitions
    counted so far, as ``((source, old, new), count)`` pairs (read it after the snapshots)."""

    prefix: str
    transitions: Transitions

    def family(self, name: str, type_: str, help_: str, *labels: str) -> Family:
        """An empty family called ``{prefix}_{name}``."""
        return Family(f"{self.prefix}_{name}", type_, help_, labels)


Items = Sequence[tuple[str, Any]]
FamilyFunction = Callable[[Items, Scrape], list[Family]]


@dataclass(frozen=True, slots=True)
class Kind:
    """A policy kind: its ``Registry`` kind name, its class (to find it inside pipelines; None
    for kinds never in a pipeline) and the function that turns its objects into families."""

    name: str
    type: type[Any] | None
    families: FamilyFunction


# -- one function per kind ---------------------------------------------------------------------


def breakers(items: Items, scrape: Scrape) -> list[Family]:
    """Calls by outcome, slow calls, state (one row per state), window failure ratio, and
    transitions by (from, to)."""
    calls = scrape.family(
        "circuit_breaker_calls",
        COUNTER,
        "Calls offered to the circuit breaker by outcome: success, failure, ignored (an error "
        "matched by ignore=), rejected (not run: the breaker was open).",
        "name",
        "outcome",
    )
    slow = scrape.family(
        "circuit_breaker_slow_calls",
        COUNTER,
        "Calls that ran longer than slow_call_duration (also counted as success or failure).",
        "name",
    )
    state = scrape.family(
        "circuit_breaker_state",
        GAUGE,
        "1 for the circuit breaker's current state, 0 for the others.",
        "name",
        "state",
    )
    ratio = scrape.family(
        "circuit_breaker_failure_ratio",
        GAUGE,
        "Share of failed calls in the circuit breaker's window (0 when the window is empty).",
        "name",
    )
    transitions = scrape.family(
        "circuit_breaker_transitions",
        COUNTER,
        "Circuit breaker state changes by (from, to), counted since the collector was created.",
        "name",
        "from",
        "to",
    )
    add_call, add_slow, add_state = calls.rows.append, slow.rows.append, state.rows.append
    add_ratio = ratio.rows.append
    labels: dict[str, str] = {}
    for label, breaker in items:
        snap = breaker.snapshot()
        add_call(((label, "success"), snap.successes))
        add_call(((label, "failure"), snap.failures))
        add_call(((label, "ignored"), snap.ignored))
        add_call(((label, "rejected"), snap.rejected))
        add_slow(((label,), snap.slow))
        current = snap.state.value
        for name in BREAKER_STATES:
            add_state(((label, name), 1 if name == current else 0))
        add_ratio(((label,), snap.failure_rate))
        labels[breaker.name] = label
    # After the snapshots: a snapshot may itself move an OPEN breaker to HALF_OPEN.
    for (source, old, new), count in scrape.transitions():
        label_ = labels.get(source)
        if label_ is not None and old in BREAKER_STATES and new in BREAKER_STATES:
            transitions.rows.append(((label_, old, new), count))
    return [calls, slow, state, ratio, transitions]


def retries(items: Items, scrape: Scrape) -> list[Family]:
    """Finished calls, attempts (first attempts plus retries) and exhausted calls."""
    calls = scrape.family(
        "retry_calls", COUNTER, "Calls finished through the retry policy.", "name"
    )
    attempts = scrape.family(
        "retry_attempts",
        COUNTER,
        "Attempts made by the retry policy: first attempts plus retries.",
        "name",
    )
    exhausted = scrape.family(
        "retry_exhausted",
        COUNTER,
        "Calls that gave up: attempts, timeout, outer deadline or retry budget exhausted.",
        "name",
    )
    for label, retry in items:
        stats = retry.snapshot()
        calls.rows.append(((label,), stats.calls))
        attempts.rows.append(((label,), stats.attempts))
        exhausted.rows.append(((label,), stats.exhausted))
    return [calls, attempts, exhausted]


def budgets(items: Items, scrape: Scrape) -> list[Family]:
    """Retries a retry budget still allows in its current window."""
    available = scrape.family(
        "retry_budget_available",
        GAUGE,
        "Retries the retry budget still allows in its current window.",
        "name",
    )
    for label, budget in items:
        available.rows.append(((label,), budget.snapshot().available))
    return [available]


def bulkheads(items: Items, scrape: Scrape) -> list[Family]:
    """Rejections, calls running and waiting, and the two limits (for saturation)."""
    rejected = scrape.family(
        "bulkhead_rejected",
        COUNTER,
        "Calls rejected by the bulkhead (queue full or queue wait timed out).",
        "name",
    )
    active = scrape.family(
        "bulkhead_active", GAUGE, "Calls holding a bulkhead slot right now.", "name"
    )
    queued = scrape.family(
        "bulkhead_queued", GAUGE, "Calls waiting for a bulkhead slot right now.", "name"
    )
    capacity = scrape.family(
        "bulkhead_max_concurrent", GAUGE, "Calls the bulkhead runs at once at most.", "name"
    )
    queue = scrape.family(
        "bulkhead_max_queued", GAUGE, "Calls the bulkhead lets wait at most.", "name"
    )
    for label, bulkhead in items:
        snap = bulkhead.snapshot()
        key = (label,)
        rejected.rows.append((key, snap.rejected))
        active.rows.append((key, snap.active))
        queued.rows.append((key, snap.queued))
        capacity.rows.append((key, snap.max_concurrent))
        queue.rows.append((key, snap.max_queued))
    return [rejected, active, queued, capacity, queue]


def _one_counter(items: Items, scrape: Scrape, name: str, help_: str, attr: str) -> list[Family]:
    """One counter per policy, read from its snapshot's ``attr``."""
    family = scrape.family(name, COUNTER, help_, "name")
    for label, policy in items:
        family.rows.append(((label,), getattr(policy.snapshot(), attr)))
    return [family]


def timeouts(items: Items, scrape: Scrape) -> list[Family]:
    """Calls that ran past the deadline."""
    help_ = "Calls that ran past the timeout's deadline."
    return _one_counter(items, scrape, "timeout_expired", help_, "timeouts")


def fallbacks(items: Items, scrape: Scrape) -> list[Family]:
    """Times the fallback answered instead of the call."""
    help_ = "Times the fallback answered instead of the call."
    return _one_counter(items, scrape, "fallback_used", help_, "used")


def hedges(items: Items, scrape: Scrape) -> list[Family]:
    """Hedged attempts launched, and calls a hedged attempt won."""
    launched = scrape.family(
        "hedge_launched", COUNTER, "Hedged attempts launched after the primary was slow.", "name"
    )
    won = scrape.family("hedge_won", COUNTER, "Calls answered by a hedged attempt.", "name")
    for label, hedge in items:
        snap = hedge.snapshot()
        launched.rows.append(((label,), snap.launched))
        won.rows.append(((label,), snap.won))
    return [launched, won]


def chaos(items: Items, scrape: Scrape) -> list[Family]:
    """Faults and latencies injected, and whether chaos is on."""
    injected = scrape.family(
        "chaos_injected",
        COUNTER,
        "Faults and latencies injected by chaos, by type.",
        "name",
        "type",
    )
    enabled = scrape.family("chaos_enabled", GAUGE, "1 while chaos is enabled, else 0.", "name")
    for label, policy in items:
        snap = policy.snapshot()
        injected.rows.append(((label, "fault"), snap.faults))
        injected.rows.append(((label, "latency"), snap.latencies))
        enabled.rows.append(((label,), 1 if snap.enabled else 0))
    return [injected, enabled]


def degradation(items: Items, scrape: Scrape) -> list[Family]:
    """The service's degradation level, its changes, and whether each feature is on (one
    manager per registry)."""
    level = scrape.family(
        "degradation_level",
        GAUGE,
        "Degradation level: 0 normal, 1 minor, 2 moderate, 3 severe, 4 critical, 5 maintenance.",
    )
    changes = scrape.family("degradation_changes", COUNTER, "Changes of the degradation level.")
    enabled = scrape.family(
        "degradation_feature_enabled",
        GAUGE,
        "1 while the feature is on at the current degradation level, else 0.",
        "feature",
    )
    for _label, manager in items[:1]:
        current = manager.level
        level.rows.append(((), int(current)))
        changes.rows.append(((), manager.changes))
        for feature, off_at in sorted(manager.features().items()):
            enabled.rows.append(((feature,), 1 if current < off_at else 0))
    return [level, changes, enabled]


KINDS: tuple[Kind, ...] = (
    Kind("breaker", CircuitBreaker, breakers),
    Kind("retry", Retry, retries),
    Kind("budget", RetryBudget, budgets),
    Kind("bulkhead", Bulkhead, bulkheads),
    Kind("timeout", Timeout, timeouts),
    Kind("fallback", Fallback, fallbacks),
    Kind("hedge", Hedge, hedges),
    Kind("chaos", Chaos, chaos),
    Kind("degradation", DegradationManager, degradation),
    Kind("http_client", None, http_clients),
    Kind("dlq", None, dead_letter_queues),
    Kind("limiter", RateLimiter, rate_limiters),
    Kind("concurrency", SlotLimiter, concurrency_limiters),  # and AdaptiveConcurrency
    Kind("throttle", AdaptiveThrottle, throttles),
    Kind("queue", None, work_queues),
    Kind("backup", None, backups),
)
"""Every policy kind the collector reads, in exposition order."""


# -- health --------------------------------------------------------------------------------------


def health_checks(
    items: Sequence[tuple[str, Check, CheckResult | None]], scrape: Scrape
) -> list[Family]:
    """Each check's last status, duration and time, and its settings (``_info``), from
    ``(label, check, last result or None)``; never runs a check."""
    status = scrape.family(
        "health_check_status",
        GAUGE,
        "Last result of the health check: 2 pass, 1 warn (or not run yet), 0 fail.",
        "check",
    )
    duration = scrape.family(
        "health_check_duration_seconds", GAUGE, "Duration of the health check's last run.", "check"
    )
    last = scrape.family(
        "health_check_last_run_timestamp_seconds",
        GAUGE,
        "When the health check's last run finished (Unix time).",
        "check",
    )
    info = scrape.family(
        "health_check_info",
        GAUGE,
        "Always 1: the health check's component type, whether it is critical, and its groups.",
        "check",
        "component_type",
        "critical",
        *HEALTH_GROUPS,
    )
    for label, check, result in items:
        key = (label,)
        value = HEALTH_STATUS_VALUES[result.status.value] if result is not None else 1
        status.rows.append((key, value))
        if result is not None and result.time > 0:
            duration.rows.append((key, result.duration))
            last.rows.append((key, result.time))
        member = tuple("true" if group in check.groups else "false" for group in HEALTH_GROUPS)
        critical = "true" if check.critical else "false"
        info.rows.append(((label, check.component_type, critical, *member), 1))
    return [status, duration, last, info]
