"""Property-based: for any arrivals, each algorithm admits no more than its definition allows,
refused requests consume nothing, ``retry_after`` is exact, and the fast path agrees."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.ratelimit import (
    GCRA,
    Algorithm,
    Decision,
    FixedWindow,
    LeakyBucket,
    LogState,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)

Trace = list[tuple[float, float, Decision]]

meters = st.builds(
    lambda cls, rate, burst: cls(rate, burst),
    st.sampled_from([TokenBucket, LeakyBucket, GCRA]),
    st.floats(0.01, 1000.0),
    st.one_of(st.integers(1, 20), st.floats(1.0, 20.0), st.integers(1, 500)),
)
limits = st.integers(1, 20)
periods = st.floats(0.001, 100.0)
windows = st.builds(
    lambda cls, limit, window: cls(limit, window),
    st.sampled_from([FixedWindow, SlidingWindowLog, SlidingWindowCounter]),
    limits,
    periods,
)
algorithms = st.one_of(meters, windows)
starts = st.one_of(st.just(0.0), st.floats(0.0, 1e6), st.floats(1e6, 1e8))
# Gaps between arrivals (often none) and costs (mostly whole) up to above most capacities.
gaps_ = st.one_of(st.just(0.0), st.floats(0.0, 3.0), st.floats(0.0, 200.0))
costs = st.one_of(st.integers(1, 8), st.floats(0.01, 8.0))
arrivals = st.lists(st.tuples(gaps_, costs), min_size=1, max_size=60)


def replay(algorithm: Algorithm, start: float, gaps: list[tuple[float, float]]) -> Trace:
    """Decide the arrivals in order, keeping the state as a limiter would."""
    state: Any = None
    now = start
    trace: Trace = []
    for gap, cost in gaps:
        now += gap
        new, decision = algorithm.decide(state, now, cost)
        if decision.allowed:
            state = new
        trace.append((now, float(cost), decision))
    return trace


def walk(algorithm: Algorithm, trace: Trace) -> Iterator[tuple[float, float, Decision, Any]]:
    """Each step of ``trace`` with the state a limiter holds after it, rebuilt by deciding the
    admitted requests again (a refused one leaves it as it was). The state is the live one:
    use it before the next step."""
    state: Any = None
    for now, cost, decision in trace:
        if decision.allowed:
            state, _ = algorithm.decide(state, now, cost)
        yield now, cost, decision, state


def admitted(trace: Trace) -> list[tuple[float, float]]:
    return [(t, c) for t, c, d in trace if d.allowed]


def slack(*values: float) -> float:
    """Room for floating-point rounding in a bound made of ``values``."""
    return 1e-9 * (1.0 + sum(abs(v) for v in values))


# -- admissions never exceed the definition ------------------------------------------------------


@settings(max_examples=300)
@given(meters, starts, arrivals)
def test_meters_admit_at_most_burst_plus_rate_times_interval(
    meter: Any, start: float, gaps: list[tuple[float, float]]
) -> None:
    """Over any interval [t_i, t_j], a meter admits at most burst + rate * (t_j - t_i)."""
    got = admitted(replay(meter, start, gaps))
    for i, (ti, _) in enumerate(got):
        total = 0.0
        for tj, cost in got[i:]:
            total += cost
            bound = meter.capacity + meter.rate * (tj - ti)
            # The documented rounding slack: (capacity + 2) ulps of the clock, at the rate.
            rounding = 2 * (meter.capacity + 2) * math.ulp(tj + meter.tau) * meter.rate
            assert total <= bound + rounding + slack(bound)


@settings(max_examples=300)
@given(algorithms, starts)
def test_a_whole_quota_is_admitted_at_one_instant(algorithm: Any, start: float) -> None:
    """A fresh key admits exactly its whole quota of unit requests at one instant, at any time."""
    state: Any = None
    for _ in range(algorithm.limit):
        state, decision = algorithm.decide(state, start, 1)
        assert decision.allowed
    # Only a burst a rounding error short of the next whole unit may let that unit in.
    almost_whole = math.ceil(algorithm.capacity) - algorithm.capacity < 1e-12
    if not almost_whole:
        assert not algorithm.decide(state, start, 1)[1].allowed


@settings(max_examples=300)
@given(limits, periods, starts, arrivals)
def test_fixed_window_admits_at_most_limit_per_window(
    limit: int, window: float, start: float, gaps: list[tuple[float, float]]
) -> None:
    """Windows open at an admission once the last one ended; each admits at most ``limit``."""
    got = admitted(replay(FixedWindow(limit, window), start, gaps))
    end, count = -math.inf, 0.0
    for t, cost in got:
        if t >= end:
            end, count = t + window, 0.0
        count += cost
        assert count <= limit + slack(limit)


@settings(max_examples=300)
@given(limits, periods, starts, arrivals)
def test_sliding_log_admits_at_most_limit_in_any_window(
    limit: int, window: float, start: float, gaps: list[tuple[float, float]]
) -> None:
    """In every interval (t - window, t], the sliding log admits at most ``limit``."""
    got = admitted(replay(SlidingWindowLog(limit, window), start, gaps))
    recent: deque[tuple[float, float]] = deque()
    for t, cost in got:
        while recent and recent[0][0] + window <= t:
            recent.popleft()
        recent.append((t, cost))
        assert sum(c for _, c in recent) <= limit + slack(limit)


@settings(max_examples=300)
@given(limits, periods, starts, arrivals)
def test_sliding_counter_keeps_its_estimate_within_limit(
    limit: int, window: float, start: float, gaps: list[tuple[float, float]]
) -> None:
    """At each admission, prev * overlap + curr stays within ``limit`` (so does each window's
    own count), with windows laid end to end from the first admission."""
    got = admitted(replay(SlidingWindowCounter(limit, window), start, gaps))
    end, prev, curr = -math.inf, 0.0, 0.0
    for t, cost in got:
        if t >= end + window:
            end, prev, curr = t + window, 0.0, 0.0
        elif t >= end:
            end, prev, curr = end + window, curr, 0.0
        curr += cost
        assert curr <= limit + slack(limit)
        assert prev * (end - t) / window + curr <= limit + slack(limit)


# -- refused requests consume nothing -------------------------------------------------------------


@settings(max_examples=300)
@given(algorithms, starts, arrivals)
def test_refused_requests_change_nothing(
    algorithm: Any, start: float, gaps: list[tuple[float, float]]
) -> None:
    """Dropping the refused requests from the arrivals leaves every other decision the same."""
    trace = replay(algorithm, start, gaps)
    state: Any = None
    for now, cost, decision in trace:
        if not decision.allowed:
            continue
        state, again = algorithm.decide(state, now, cost)
        assert again == decision


# -- retry_after is exact -------------------------------------------------------------------------


@settings(max_examples=400)
@given(algorithms, starts, arrivals)
def test_retry_after_is_exact(
    algorithm: Any, start: float, gaps: list[tuple[float, float]]
) -> None:
    """A refused request fits at now + retry_after, and not a float's breadth before it."""
    for now, cost, decision, state in walk(algorithm, replay(algorithm, start, gaps)):
        if decision.allowed:
            assert decision.retry_after == 0.0
            continue
        if cost > algorithm.capacity:
            assert decision.retry_after == math.inf
            continue
        assert 0.0 < decision.retry_after < math.inf
        # A clock at ``now`` advanced by ``wait`` reads ``now + wait``; a refused request left
        # the state as it was before it.
        at = now + decision.retry_after
        assert algorithm.peek(state, at, cost).allowed
        before = now + math.nextafter(decision.retry_after, 0.0)
        if before < at:
            assert not algorithm.peek(state, before, cost).allowed


# -- the fast path agrees with the decisions -------------------------------------------------------


@settings(max_examples=300)
@given(algorithms, starts, arrivals)
def test_admit_agrees_with_decide(
    algorithm: Any, start: float, gaps: list[tuple[float, float]]
) -> None:
    """``admit`` (in place, bool only) takes exactly the decisions and states of ``decide``."""
    states: dict[str, Any] = {}
    for now, cost, decision, expected in walk(algorithm, replay(algorithm, start, gaps)):
        assert algorithm.admit(states, "k", now, cost) is decision.allowed
        if isinstance(expected, LogState):  # a log drops expired entries as it goes
            states["k"].prune(now)
            expected.prune(now)
            assert list(states["k"].expiries) == list(expected.expiries)
        else:
            assert states.get("k") == expected


@settings(max_examples=200)
@given(algorithms, starts, arrivals)
def test_idle_states_decide_like_no_state(
    algorithm: Any, start: float, gaps: list[tuple[float, float]]
) -> None:
    """Whenever ``idle`` says a state may be dropped, it decides every cost like None."""
    for now, _, _, state in walk(algorithm, replay(algorithm, start, gaps)):
        if state is not None and algorithm.idle(state, now):
            for probe in (1.0, algorithm.capacity):
                mine, fresh = algorithm.peek(state, now, probe), algorithm.peek(None, now, probe)
                assert mine.allowed == fresh.allowed
                assert mine.remaining == fresh.remaining
