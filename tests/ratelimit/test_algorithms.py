"""The six algorithms, driven by hand: decisions, retry_after, reset_after, remaining, options."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from buttress.errors import ConfigError
from buttress.ratelimit import (
    GCRA,
    Algorithm,
    Decision,
    FixedWindow,
    LeakyBucket,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
    parse_period,
    parse_rate,
)

ALGORITHMS: list[type[Any]] = [
    TokenBucket,
    LeakyBucket,
    GCRA,
    FixedWindow,
    SlidingWindowLog,
    SlidingWindowCounter,
]


def run(algorithm: Algorithm, requests: Sequence[tuple[float, float]]) -> list[Decision]:
    """Decide ``(time, cost)`` requests in order, keeping the state as a limiter would."""
    state: Any = None
    decisions = []
    for now, cost in requests:
        new, decision = algorithm.decide(state, now, cost)
        if decision.allowed:
            state = new
        decisions.append(decision)
    return decisions


# -- rates and options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("100/minute", 100 / 60),
        ("10/s", 10.0),
        ("10/second", 10.0),
        ("5 per hour", 5 / 3600),
        ("1000 per 5 minutes", 1000 / 300),
        ("2/ms", 2000.0),
        ("86400/day", 1.0),
        (" 3 / 2 hours ", 3 / 7200),
        (7, 7.0),
        (0.5, 0.5),
    ],
)
def test_rates_parse_from_numbers_and_text(text: object, per_second: float) -> None:
    """Rates are a number per second or text "<count>/<period>" with units and plurals."""
    assert parse_rate("rate", text) == pytest.approx(per_second)


@pytest.mark.parametrize(
    "bad",
    [0, -1, math.nan, math.inf, "0/s", "ten/s", "5/fortnight", "5", "", True, None, "1e400/s"],
)
def test_bad_rates_name_the_field_and_value(bad: object) -> None:
    """A zero, negative, NaN, infinite or unreadable rate raises ConfigError naming it."""
    with pytest.raises(ConfigError) as info:
        TokenBucket(bad, 10)  # type: ignore[arg-type]
    assert info.value.field == "rate"
    assert info.value.value is bad or (isinstance(bad, float) and math.isnan(bad))


def test_periods_parse_from_numbers_timedeltas_and_text() -> None:
    """Windows accept seconds, a timedelta, or text like "1 minute" and "30s"."""
    assert parse_period("window", 2) == 2.0
    assert parse_period("window", timedelta(minutes=2)) == 120.0
    assert parse_period("window", "1 minute") == 60.0
    assert parse_period("window", "30s") == 30.0
    assert parse_period("window", "hours") == 3600.0


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda v: TokenBucket(1, v), "burst"),
        (lambda v: GCRA(1, v), "burst"),
        (lambda v: LeakyBucket(1, v), "capacity"),
        (lambda v: FixedWindow(v, 1), "limit"),
        (lambda v: SlidingWindowLog(v, 1), "limit"),
        (lambda v: SlidingWindowCounter(v, 1), "limit"),
        (lambda v: FixedWindow(1, v), "window"),
        (lambda v: SlidingWindowLog(1, v), "window"),
        (lambda v: SlidingWindowCounter(1, v), "window"),
    ],
)
@pytest.mark.parametrize("bad", [0, -3, math.nan, math.inf, -math.inf, "x", None])
def test_bad_sizes_and_windows_raise_config_error(build: Any, field: str, bad: object) -> None:
    """Zero, negative, NaN, infinite or non-numeric sizes and windows raise ConfigError."""
    with pytest.raises(ConfigError) as info:
        build(bad)
    assert info.value.field == field
    assert field in str(info.value)


def test_sizes_below_one_unit_are_refused() -> None:
    """A bucket that could never admit one unit is a configuration error, not a silent no."""
    with pytest.raises(ConfigError, match="burst"):
        TokenBucket(10, 0.5)
    with pytest.raises(ConfigError, match="limit"):
        FixedWindow(2.5, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", ALGORITHMS)
def test_options_and_equality(cls: type[Any]) -> None:
    """Algorithms describe their options, compare by value and hash alike."""
    a, b = cls(4, 2), cls(4, 2)
    assert a == b
    assert hash(a) == hash(b)
    assert a != cls(5, 2)
    described = a.describe()
    assert described["algorithm"] == cls.__name__
    assert set(described) - {"algorithm"} == set(a.options())
    assert repr(a).startswith(cls.__name__ + "(")


# -- meters ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [TokenBucket, LeakyBucket, GCRA])
def test_meter_admits_burst_then_one_per_interval(cls: type[Any]) -> None:
    """A full bucket admits ``burst`` at once, then one unit per 1/rate seconds."""
    meter = cls(10, 3)  # 10/s, 3 at once
    got = run(meter, [(0.0, 1)] * 4 + [(0.1, 1), (0.1, 1)])
    assert [d.allowed for d in got] == [True, True, True, False, True, False]
    assert [d.remaining for d in got[:3]] == [2, 1, 0]
    assert got[3].retry_after == pytest.approx(0.1)
    assert got[3].reset_after == pytest.approx(0.3)
    assert got[0].limit == 3


def test_token_bucket_refusal_says_exactly_when() -> None:
    """retry_after is the exact time until the cost fits; reset_after until the bucket is full."""
    bucket = TokenBucket("60/minute", burst=5)
    state, first = bucket.decide(None, 100.0, 5)
    assert first.allowed
    assert first.remaining == 0
    assert first.reset_after == pytest.approx(5.0)
    _, refused = bucket.decide(state, 101.0, 3)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(2.0)
    assert refused.remaining == 1
    assert bucket.decide(state, 101.0 + refused.retry_after, 3)[1].allowed


@pytest.mark.parametrize("cls", ALGORITHMS)
def test_cost_above_capacity_is_never_allowed(cls: type[Any]) -> None:
    """A cost above the capacity is refused with retry_after = inf, whatever the state."""
    algorithm = cls(10, 2)
    state, _ = algorithm.decide(None, 0.0, 1)
    for s in (None, state):
        new, decision = algorithm.decide(s, 5.0, algorithm.capacity + 1)
        assert not decision.allowed
        assert decision.retry_after == math.inf
        assert decision.exceeds_capacity
        assert decision.reason == "cost exceeds capacity"
        assert not decision
        assert new is s
    assert algorithm.decide(None, 5.0, algorithm.capacity)[1].allowed


@pytest.mark.parametrize("cls", ALGORITHMS)
def test_idle_state_is_forgotten_only_when_whole(cls: type[Any]) -> None:
    """idle() is False while the state limits anything, True once it decides like None."""
    algorithm = cls(2, 1)  # meters: 2/s burst 1; windows: 2 per 1 s
    state, _ = algorithm.decide(None, 0.0, 1)
    assert not algorithm.idle(state, 0.0)
    assert algorithm.idle(state, 10.0)


# -- windows ---------------------------------------------------------------------------------


def test_fixed_window_starts_at_first_request_and_resets_at_its_end() -> None:
    """A fixed window opens at the key's first request; its end is the retry time."""
    window = FixedWindow(2, 10)
    got = run(window, [(3.0, 1), (4.0, 1), (12.9, 1), (13.0, 1)])
    assert [d.allowed for d in got] == [True, True, False, True]
    assert got[2].retry_after == pytest.approx(0.1)
    assert got[2].reset_after == pytest.approx(0.1)
    assert got[3].reset_after == pytest.approx(10.0)
    assert got[3].remaining == 1


def test_sliding_log_is_exact_over_any_window() -> None:
    """The log refuses until the oldest admitted request leaves the window."""
    log = SlidingWindowLog(2, 10)
    got = run(log, [(0.0, 1), (5.0, 1), (9.0, 1), (10.0, 1), (14.0, 1), (15.0, 1)])
    assert [d.allowed for d in got] == [True, True, False, True, False, True]
    assert got[2].retry_after == pytest.approx(1.0)
    assert got[4].retry_after == pytest.approx(1.0)
    assert got[5].remaining == 0
    assert got[5].reset_after == pytest.approx(10.0)


def test_sliding_log_weighs_costs() -> None:
    """A refused large request waits for as many old entries as it needs room for."""
    log = SlidingWindowLog(5, 10)
    got = run(log, [(0.0, 2), (1.0, 2), (2.0, 1), (3.0, 4)])
    assert [d.allowed for d in got] == [True, True, True, False]
    assert got[3].retry_after == pytest.approx(8.0)  # the entries of t=0 and t=1 must leave


def test_sliding_counter_weights_the_previous_window() -> None:
    """The estimate is prev * overlap + curr; room opens as the previous window slides out."""
    counter = SlidingWindowCounter(10, 10)
    state: Any = None
    for _ in range(10):
        state, decision = counter.decide(state, 0.0, 1)
        assert decision.allowed
    # At t=12.5 the previous window (10 requests) still overlaps 75%: estimate 7.5.
    state, decision = counter.decide(state, 12.5, 1)
    assert decision.allowed
    assert decision.remaining == 1
    state, decision = counter.decide(state, 12.5, 1)
    assert decision.allowed
    assert decision.remaining == 0
    _, refused = counter.decide(state, 12.5, 1)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.5)  # at t=13: 10 * 0.7 + 2, room for 1 more


def test_sliding_counter_full_window_waits_for_the_next() -> None:
    """When the current window alone is full, the retry falls in the next window."""
    counter = SlidingWindowCounter(4, 10)
    got = run(counter, [(0.0, 1)] * 4 + [(1.0, 1)])
    refused = got[-1]
    assert not refused.allowed
    # Next window from t=10: 4 * (20 - t) / 10 + 1 <= 4  <=>  t >= 12.5
    assert refused.retry_after == pytest.approx(11.5)
    assert refused.reset_after == pytest.approx(19.0)


def test_decision_is_a_small_named_tuple() -> None:
    """Decision unpacks like a tuple and is truthy exactly when allowed."""
    allowed = Decision(True, 3, 0.0, 1.0, 5)
    refused = Decision(False, 0, 0.25, 1.0, 5)
    assert bool(allowed)
    assert not refused
    ok, remaining, retry_after, reset_after, limit = refused
    assert (ok, remaining, retry_after, reset_after, limit) == (False, 0, 0.25, 1.0, 5)
    assert refused.reason == "rate limited"
    assert allowed.reason == "allowed"
    assert not refused.exceeds_capacity
