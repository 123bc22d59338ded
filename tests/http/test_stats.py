"""Per-host statistics: counts, the recent window, percentiles, the histogram and grading."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress.http import OUTCOMES, HealthThresholds
from buttress.http._stats import BUCKETS, HostRecorder, outcome_of_status, percentile
from buttress.telemetry._http import HTTP_OUTCOMES

DEFAULT = HealthThresholds()
OUTCOME = st.integers(0, len(OUTCOMES) - 1)
SECONDS = st.one_of(st.none(), st.floats(0, 100, allow_nan=False))


def read(
    recorder: HostRecorder, thresholds: HealthThresholds = DEFAULT, breaker: str | None = None
):
    return recorder.read(
        "c", "h", retries=0, hedges=0, breaker_state=breaker, thresholds=thresholds
    )


def test_statuses_map_to_outcomes() -> None:
    """< 400 success, 429 throttled, other 4xx client_error, 5xx server_error."""
    names = [OUTCOMES[outcome_of_status(s)] for s in (200, 302, 404, 429, 500, 503)]
    assert names == [
        "success",
        "success",
        "client_error",
        "throttled",
        "server_error",
        "server_error",
    ]


def test_telemetry_knows_every_outcome() -> None:
    """The metric's outcome labels are exactly the recorder's outcomes."""
    assert HTTP_OUTCOMES == OUTCOMES


def test_nearest_rank_percentiles() -> None:
    """p50 of 1..10 is 5, p90 is 9, p99 is 10; an empty list has none."""
    values = [float(v) for v in range(1, 11)]
    assert [percentile(values, p) for p in (50, 90, 99)] == [5.0, 9.0, 10.0]
    assert percentile([], 50) is None


def test_the_window_forgets_old_requests() -> None:
    """After window-many successes, earlier failures no longer weigh on the success rate."""
    recorder = HostRecorder(window=4)
    for _ in range(4):
        recorder.record(OUTCOMES.index("server_error"), 0.1)
    assert read(recorder).success_rate == 0.0
    for _ in range(4):
        recorder.record(OUTCOMES.index("success"), 0.2)
    stats = read(recorder)
    assert (stats.success_rate, stats.window_requests, stats.requests) == (1.0, 4, 8)
    assert stats.latency_p99 == 0.2


def test_local_rejections_have_no_latency() -> None:
    """A circuit_open rejection counts as a failure but adds no latency sample."""
    recorder = HostRecorder()
    recorder.record(OUTCOMES.index("circuit_open"), None)
    stats = read(recorder)
    assert (stats.failures, stats.latency_count, stats.latency_p50) == (1, 0, None)
    assert stats.success_rate == 0.0


@given(st.lists(st.tuples(OUTCOME, SECONDS), max_size=300), st.integers(1, 64))
def test_counts_window_and_histogram_agree(
    records: list[tuple[int, float | None]], window: int
) -> None:
    """requests is the sum of outcomes; the window holds the last min(n, window) requests;
    percentiles are ordered and lie within the window's durations; the histogram is
    cumulative and ends at the number of timed requests."""
    recorder = HostRecorder(window=window)
    for outcome, seconds in records:
        recorder.record(outcome, seconds)
    stats = read(recorder)
    assert stats.requests == sum(stats.outcomes.values()) == len(records)
    assert stats.successes + stats.failures == stats.requests
    assert stats.window_requests == min(len(records), window)
    recent = records[-window:] if records else []
    good = sum(1 for outcome, _ in recent if OUTCOMES[outcome] in ("success", "client_error"))
    if recent:
        assert stats.success_rate == pytest.approx(good / len(recent))
    else:
        assert stats.success_rate is None
    timed = [max(0.0, s) for _, s in recent if s is not None]
    if timed:
        assert stats.latency_p50 is not None
        assert stats.latency_p99 is not None
        assert min(timed) <= stats.latency_p50 <= stats.latency_p90 <= stats.latency_p99
        assert stats.latency_p99 <= max(timed)
    else:
        assert stats.latency_p50 is None
    counts = [count for _, count in stats.latency_buckets]
    assert counts == sorted(counts)
    assert [bound for bound, _ in stats.latency_buckets] == [*BUCKETS, math.inf]
    assert counts[-1] == stats.latency_count == sum(1 for _, s in records if s is not None)


@pytest.mark.parametrize(
    ("rate_failures", "breaker", "status"),
    [
        (0, "closed", "pass"),
        (1, "closed", "warn"),  # 90 %: below 95 %
        (6, "closed", "fail"),  # 40 %: below 50 %
        (0, "half_open", "warn"),
        (0, "open", "fail"),
        (0, "forced_open", "fail"),
    ],
)
def test_grading_from_rate_and_breaker(rate_failures: int, breaker: str, status: str) -> None:
    """The success rate over the window and the breaker state grade the host."""
    recorder = HostRecorder(window=10)
    for index in range(10):
        failed = index < rate_failures
        recorder.record(OUTCOMES.index("server_error" if failed else "success"), 0.01)
    stats = read(recorder, breaker=breaker)
    assert stats.status == status
    assert (stats.reason == "") == (status == "pass")


def test_too_few_requests_are_not_judged() -> None:
    """Below min_requests a bad success rate does not change the grade."""
    recorder = HostRecorder()
    recorder.record(OUTCOMES.index("timeout"), 1.0)
    assert read(recorder).status == "pass"
    assert read(recorder, HealthThresholds(min_requests=1)).status == "fail"


def test_latency_thresholds_grade_the_p99() -> None:
    """A p99 above warn_p99_above warns, above fail_p99_above fails."""
    recorder = HostRecorder()
    recorder.record(OUTCOMES.index("success"), 0.8)
    warn = HealthThresholds(warn_p99_above=0.5, fail_p99_above=1.0)
    assert read(recorder, warn).status == "warn"
    assert "p99 latency 800 ms" in read(recorder, warn).reason
    assert read(recorder, HealthThresholds(fail_p99_above=0.5)).status == "fail"


def test_stats_are_plain_data() -> None:
    """to_dict() gives plain values, without the histogram."""
    recorder = HostRecorder()
    recorder.record(0, 0.01)
    data = read(recorder).to_dict()
    assert data["host"] == "h"
    assert data["outcomes"]["success"] == 1
    assert "latency_buckets" not in data
