"""Per-host statistics: outcome counts, a window of recent requests, a latency histogram, and
the health status derived from them.

``HostRecorder.record`` runs once per request under a lock of its own (a request costs far more
than an uncontended lock). The window holds the last ``window`` requests: whether each was a
success and, if it reached the network, how long it took; it gives the recent success rate and
the latency percentiles (nearest rank). The histogram (Prometheus' default buckets) counts every
request since the start, for ``/metrics``. Nothing here imports httpx.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

from buttress import _options
from buttress.errors import ConfigError

__all__ = [
    "BUCKETS",
    "OUTCOMES",
    "HealthThresholds",
    "HostRecorder",
    "HostStats",
    "percentile",
]

OUTCOMES = (
    "success",
    "client_error",
    "throttled",
    "server_error",
    "timeout",
    "connect_error",
    "transport_error",
    "circuit_open",
    "rate_limited",
    "error",
)
"""How a request ended: an answer (< 400 success, 4xx client_error, 429 throttled, 5xx
server_error), a transport error (timeout, connect_error, transport_error), a local rejection
(circuit_open, rate_limited), or another error raised through the transport (error)."""

SUCCESS, CLIENT_ERROR, THROTTLED, SERVER_ERROR = 0, 1, 2, 3
TIMEOUT, CONNECT_ERROR, TRANSPORT_ERROR, CIRCUIT_OPEN, RATE_LIMITED, ERROR = 4, 5, 6, 7, 8, 9
_GOOD = (True, True) + (False,) * 8  # success and client_error: the host answered properly

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the latency histogram, Prometheus' defaults; +Inf follows."""


def outcome_of_status(status: int) -> int:
    """The outcome index of an answer with ``status``."""
    if status >= 500:
        return SERVER_ERROR
    if status == 429:
        return THROTTLED
    return CLIENT_ERROR if status >= 400 else SUCCESS


def percentile(ordered: list[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of a sorted list; None if empty."""
    if not ordered:
        return None
    rank = math.ceil(p / 100.0 * len(ordered))
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    """When a host's statistics make its status warn or fail.

    ``HealthThresholds(*, min_requests=10, warn_below=0.95, fail_below=0.5,
    warn_p99_above=None, fail_p99_above=None)``: the success rate over the recent window is
    judged once it holds ``min_requests``; p99 latency thresholds are in seconds (None: not
    judged). An open circuit breaker fails the host, a half-open one warns.
    """

    min_requests: int = 10
    warn_below: float = 0.95
    fail_below: float = 0.5
    warn_p99_above: float | None = None
    fail_p99_above: float | None = None

    def __post_init__(self) -> None:
        _options.integer("min_requests", self.min_requests, minimum=1)
        for field in ("warn_below", "fail_below"):
            value = getattr(self, field)
            number = _options.number(field, value, minimum=0.0)
            if number > 1:
                raise ConfigError(field, value, "must be a success rate in [0, 1]")
            object.__setattr__(self, field, number)
        if self.fail_below > self.warn_below:
            raise ConfigError("fail_below", self.fail_below, "must be <= warn_below")
        for field in ("warn_p99_above", "fail_p99_above"):
            seconds = _options.optional_duration(field, getattr(self, field))
            object.__setattr__(self, field, seconds)
        warn, fail = self.warn_p99_above, self.fail_p99_above
        if warn is not None and fail is not None and fail < warn:
            raise ConfigError("fail_p99_above", fail, "must be >= warn_p99_above")

    def grade(
        self, rate: float | None, window: int, p99: float | None, breaker: str | None
    ) -> tuple[str, str]:
        """``(status, reason)``: status ``pass``, ``warn`` or ``fail``; reason empty on pass."""
        fails: list[str] = []
        warns: list[str] = []
        if breaker in ("open", "forced_open"):
            fails.append(f"circuit breaker {breaker}")
        elif breaker == "half_open":
            warns.append("circuit breaker half_open")
        if rate is not None and window >= self.min_requests:
            text = f"success rate {rate:.1%} over the last {window} requests"
            if rate < self.fail_below:
                fails.append(text)
            elif rate < self.warn_below:
                warns.append(text)
        if p99 is not None:
            text = f"p99 latency {p99 * 1000:.0f} ms"
            if self.fail_p99_above is not None and p99 > self.fail_p99_above:
                fails.append(text)
            elif self.warn_p99_above is not None and p99 > self.warn_p99_above:
                warns.append(text)
        if fails:
            return "fail", "; ".join(fails + warns)
        if warns:
            return "warn", "; ".join(warns)
        return "pass", ""


@dataclass(frozen=True, slots=True)
class HostStats:
    """One host's statistics, read at once. Counts are since the client was created; the rate
    and percentiles cover the last ``window_requests`` requests (None while there are none).

    ``requests`` = ``successes`` + ``failures``; ``outcomes`` splits them (see ``OUTCOMES``);
    ``successes`` are answers below 400 and 4xx other than 429. ``attempts`` counts requests
    sent (first attempts, retries, hedges). Latencies are seconds to the answer's headers,
    retries and waits included, of requests that reached the network.
    """

    client: str
    host: str
    requests: int
    successes: int
    failures: int
    outcomes: dict[str, int]
    attempts: int
    retries: int
    hedges: int
    window_requests: int
    success_rate: float | None
    latency_p50: float | None
    latency_p90: float | None
    latency_p99: float | None
    breaker_state: str | None
    status: str
    reason: str
    latency_buckets: tuple[tuple[float, int], ...]
    """Cumulative histogram: (upper bound, requests at or below it), ending with +Inf."""
    latency_sum: float
    latency_count: int

    def to_dict(self) -> dict[str, Any]:
        """The statistics as plain data (the histogram left out)."""
        skip = {"latency_buckets", "latency_sum", "latency_count"}
        return {name: getattr(self, name) for name in self.__slots__ if name not in skip}


class HostRecorder:
    """The counters of one host; ``record`` once per request, ``read`` at any time."""

    __slots__ = (
        "_buckets",
        "_counts",
        "_durations",
        "_filled",
        "_good",
        "_lock",
        "_position",
        "_sum",
        "_timed",
        "attempts",
        "window",
    )

    def __init__(self, window: int = 256) -> None:
        self.window = _options.integer("window", window, minimum=1)
        self._lock = threading.Lock()
        self._counts = [0] * len(OUTCOMES)
        self._good = bytearray(window)
        self._durations = [math.nan] * window
        self._position = 0
        self._filled = 0
        self._buckets = [0] * (len(BUCKETS) + 1)
        self._sum = 0.0
        self._timed = 0
        self.attempts = 0

    def sent(self) -> None:
        """Count one attempt put on the wire."""
        with self._lock:
            self.attempts += 1

    def record(self, outcome: int, seconds: float | None) -> None:
        """Count a finished request: its outcome index and, if it reached the network, its
        duration in seconds (None for a local rejection)."""
        lock = self._lock
        lock.acquire()
        try:
            self._counts[outcome] += 1
            position = self._position
            self._good[position] = _GOOD[outcome]
            if seconds is None:
                self._durations[position] = math.nan
            else:
                seconds = max(0.0, seconds)
                self._durations[position] = seconds
                self._buckets[bisect_left(BUCKETS, seconds)] += 1
                self._sum += seconds
                self._timed += 1
            self._position = (position + 1) % self.window
            if self._filled < self.window:
                self._filled += 1
        finally:
            lock.release()

    def read(
        self,
        client: str,
        host: str,
        *,
        retries: int,
        hedges: int,
        breaker_state: str | None,
        thresholds: HealthThresholds,
    ) -> HostStats:
        """The statistics now, graded by ``thresholds``."""
        with self._lock:
            counts = list(self._counts)
            filled = self._filled
            good = sum(self._good[:filled]) if filled < self.window else sum(self._good)
            durations = sorted(d for d in self._durations[:filled] if d == d)  # not NaN
            buckets = list(self._buckets)
            total, timed = self._sum, self._timed
            attempts = self.attempts
        rate = good / filled if filled else None
        p99 = percentile(durations, 99)
        status, reason = thresholds.grade(rate, filled, p99, breaker_state)
        cumulative: list[tuple[float, int]] = []
        running = 0
        for bound, count in zip((*BUCKETS, math.inf), buckets, strict=True):
            running += count
            cumulative.append((bound, running))
        successes = counts[SUCCESS] + counts[CLIENT_ERROR]
        requests = sum(counts)
        return HostStats(
            client=client,
            host=host,
            requests=requests,
            successes=successes,
            failures=requests - successes,
            outcomes=dict(zip(OUTCOMES, counts, strict=True)),
            attempts=attempts,
            retries=retries,
            hedges=hedges,
            window_requests=filled,
            success_rate=rate,
            latency_p50=percentile(durations, 50),
            latency_p90=percentile(durations, 90),
            latency_p99=p99,
            breaker_state=breaker_state,
            status=status,
            reason=reason,
            latency_buckets=tuple(cumulative),
            latency_sum=total,
            latency_count=timed,
        )
