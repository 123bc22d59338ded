"""Backoff schedules: values, validation, description, and bounds checked by hypothesis."""

from __future__ import annotations

import copy
import math
import pickle
import random
from datetime import timedelta
from itertools import islice, pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress import ConfigError
from buttress.retry import Backoff


def first(backoff: Backoff, n: int, seed: int = 0) -> list[float]:
    return list(islice(backoff.delays(random.Random(seed)), n))


def test_constant_repeats_its_delay() -> None:
    """A constant schedule yields the same delay forever; its cap defaults to max(delay, 10)."""
    backoff = Backoff.constant(0.5)
    assert first(backoff, 4) == [0.5] * 4
    assert backoff.cap == 10.0
    assert Backoff.constant(30).cap == 30.0
    assert Backoff.constant(1, cap=60).cap == 60.0


def test_constant_zero_is_allowed() -> None:
    """Backoff.constant(0) retries at once (useful in tests and for idempotent local calls)."""
    assert first(Backoff.constant(0), 3) == [0.0, 0.0, 0.0]


def test_linear_adds_step_up_to_cap() -> None:
    """A linear schedule adds ``step`` each time and stays at ``cap``."""
    assert first(Backoff.linear(base=1, step=2, cap=6), 6) == [1.0, 3.0, 5.0, 6.0, 6.0, 6.0]


def test_linear_has_no_running_sum_drift() -> None:
    """The n-th linear delay is base + n*step, not an accumulated float sum."""
    delays = first(Backoff.linear(base=0.1, step=0.1, cap=1000), 1000)
    assert delays[999] == 0.1 + 0.1 * 999


def test_exponential_doubles_up_to_cap() -> None:
    """The default exponential schedule is 0.1, 0.2, 0.4, ... capped at 10 seconds."""
    assert first(Backoff.exponential(), 9) == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]


def test_exponential_factor_one_is_constant() -> None:
    """factor=1 keeps the base delay forever."""
    assert first(Backoff.exponential(base=2, factor=1), 3) == [2.0, 2.0, 2.0]


def test_fibonacci_follows_the_sequence() -> None:
    """A fibonacci schedule is base times 1, 1, 2, 3, 5, 8, ... capped."""
    assert first(Backoff.fibonacci(base=1, cap=10), 8) == [1, 1, 2, 3, 5, 8, 10, 10]


def test_decorrelated_stays_between_base_and_three_times_previous() -> None:
    """Decorrelated jitter draws from [base, 3 * previous] and never exceeds cap."""
    delays = first(Backoff.decorrelated(base=1, cap=20), 200, seed=7)
    previous = 1.0
    for delay in delays:
        assert 1.0 <= delay <= min(20.0, previous * 3)
        previous = delay
    assert max(delays) == 20.0  # the cap is reached and held


def test_jitter_full_and_equal_bounds() -> None:
    """Full jitter is within [0, d]; equal jitter within [d/2, d]."""
    raw = first(Backoff.exponential(base=1, cap=100), 50)
    full = first(Backoff.exponential(base=1, cap=100, jitter="full"), 50, seed=3)
    equal = first(Backoff.exponential(base=1, cap=100, jitter="equal"), 50, seed=3)
    assert all(0 <= j <= d for j, d in zip(full, raw, strict=True))
    assert all(d / 2 <= j <= d for j, d in zip(equal, raw, strict=True))
    assert full != raw


def test_same_rng_seed_gives_same_schedule() -> None:
    """Jitter is driven by the rng passed in, so a seeded rng reproduces the schedule."""
    backoff = Backoff.exponential(jitter="full")
    assert first(backoff, 10, seed=42) == first(backoff, 10, seed=42)
    assert len(list(islice(backoff.delays(), 3))) == 3  # the shared default rng works too


def test_durations_accept_timedelta() -> None:
    """Durations may be timedeltas; they are normalised to float seconds."""
    backoff = Backoff.exponential(base=timedelta(milliseconds=250), cap=timedelta(seconds=2))
    assert (backoff.base, backoff.cap) == (0.25, 2.0)


def test_huge_attempt_numbers_do_not_overflow() -> None:
    """Deep into a schedule, delays sit at cap without computing factor**n."""
    delays = Backoff.exponential(base=1e-300, factor=1e10, cap=1e300).delays()
    assert next(islice(delays, 100_000, None)) == 1e300


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Backoff.constant(-1), "delay"),
        (lambda: Backoff.constant(math.nan), "delay"),
        (lambda: Backoff.constant(1, cap=0.5), "cap"),
        (lambda: Backoff.linear(step=-0.1), "step"),
        (lambda: Backoff.linear(base=math.inf), "base"),
        (lambda: Backoff.exponential(base=0), "base"),
        (lambda: Backoff.exponential(factor=0.5), "factor"),
        (lambda: Backoff.exponential(factor=math.inf), "factor"),
        (lambda: Backoff.exponential(base=5, cap=1), "cap"),
        (lambda: Backoff.fibonacci(base=-1), "base"),
        (lambda: Backoff.decorrelated(cap=math.nan), "cap"),
        (lambda: Backoff.exponential(jitter="random"), "jitter"),
        (lambda: Backoff.constant(1, jitter=None), "jitter"),
        (lambda: Backoff.linear(base="1"), "base"),
        (lambda: Backoff.exponential(factor=True), "factor"),
    ],
)
def test_bad_parameters_raise_config_error_naming_the_field(build: Any, field: str) -> None:
    """Invalid parameters raise ConfigError naming the field and the value."""
    with pytest.raises(ConfigError) as info:
        build()
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_unknown_jitter_message_lists_choices() -> None:
    """The jitter error names the bad value and the allowed ones."""
    with pytest.raises(
        ConfigError, match=r"jitter: must be one of 'none', 'full', 'equal', got 'x'"
    ):
        Backoff.linear(jitter="x")


def test_backoff_is_immutable_and_hashable() -> None:
    """Backoff objects cannot be changed, compare by value and can be hashed."""
    backoff = Backoff.exponential()
    with pytest.raises(AttributeError):
        backoff.cap = 1.0
    with pytest.raises(AttributeError):
        del backoff.base
    assert backoff == Backoff.exponential(base=0.1, factor=2, cap=10)
    assert backoff != Backoff.exponential(jitter="full")
    assert backoff != "exponential"
    assert len({backoff, Backoff.exponential()}) == 1


def test_direct_construction_is_refused() -> None:
    """Backoff() without a named constructor is a TypeError pointing at the classmethods."""
    with pytest.raises(TypeError, match=r"Backoff\.constant\(\), .*\.exponential\(\)"):
        Backoff()


@pytest.mark.parametrize(
    "backoff",
    [
        Backoff.constant(1.5),
        Backoff.linear(base=0, step=1, cap=5, jitter="equal"),
        Backoff.exponential(jitter="full"),
        Backoff.fibonacci(base=0.5),
        Backoff.decorrelated(base=0.2, cap=3),
    ],
    ids=repr,
)
def test_describe_round_trips_and_pickles(backoff: Backoff) -> None:
    """describe() is plain data that from_dict turns back into an equal Backoff; pickle works."""
    data = backoff.describe()
    assert data["kind"] == backoff.kind
    assert data["cap"] == backoff.cap
    assert Backoff.from_dict(data) == backoff
    assert pickle.loads(pickle.dumps(backoff)) == backoff
    assert copy.deepcopy(backoff) == backoff


def test_repr_reads_like_the_constructor() -> None:
    """repr() shows the classmethod call that builds the same schedule."""
    assert repr(Backoff.exponential()) == "Backoff.exponential(base=0.1, factor=2.0, cap=10.0)"
    assert repr(Backoff.constant(1, jitter="full")) == (
        "Backoff.constant(delay=1.0, cap=10.0, jitter='full')"
    )
    assert repr(Backoff.decorrelated()) == "Backoff.decorrelated(base=0.1, cap=10.0)"


def test_from_dict_rejects_unknown_kind_and_parameters() -> None:
    """from_dict names the bad kind, or the parameters it does not know."""
    with pytest.raises(ConfigError, match="kind"):
        Backoff.from_dict({"kind": "quadratic"})
    with pytest.raises(ConfigError, match="unknown parameters"):
        Backoff.from_dict({"kind": "linear", "factor": 2})


# -- properties ----------------------------------------------------------------------------------

seconds = st.floats(min_value=0, max_value=1e300, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-300, max_value=1e300, allow_nan=False, allow_infinity=False)
jitters = st.sampled_from(["none", "full", "equal"])


@st.composite
def backoffs(draw: st.DrawFn, jitter: st.SearchStrategy[str] = jitters) -> Backoff:
    kind = draw(st.sampled_from(["constant", "linear", "exponential", "fibonacci", "decorrelated"]))
    base = draw(positive if kind in ("exponential", "fibonacci", "decorrelated") else seconds)
    cap = max(base, draw(seconds))
    if kind == "constant":
        return Backoff.constant(base, cap=cap, jitter=draw(jitter))
    if kind == "linear":
        return Backoff.linear(base, draw(seconds), cap, jitter=draw(jitter))
    if kind == "exponential":
        factor = draw(st.floats(min_value=1, max_value=1e6))
        return Backoff.exponential(base, factor, cap, jitter=draw(jitter))
    if kind == "fibonacci":
        return Backoff.fibonacci(base, cap, jitter=draw(jitter))
    return Backoff.decorrelated(base, cap)


@settings(max_examples=150)
@given(backoffs(), st.integers(min_value=1, max_value=3000), st.integers(0, 2**32))
def test_every_delay_is_finite_and_within_cap(backoff: Backoff, n: int, seed: int) -> None:
    """For every kind and jitter, at any attempt number, each delay is finite and in [0, cap]."""
    for delay in first(backoff, n, seed):
        assert math.isfinite(delay)
        assert 0 <= delay <= backoff.cap


@given(backoffs(jitter=st.just("none")), st.integers(min_value=1, max_value=3000))
def test_no_jitter_never_decreases(backoff: Backoff, n: int) -> None:
    """Without jitter, constant, linear, exponential and fibonacci never decrease."""
    if backoff.kind == "decorrelated":
        return
    delays = first(backoff, n)
    assert all(a <= b for a, b in pairwise(delays))


@given(backoffs(jitter=st.sampled_from(["full", "equal"])), st.integers(1, 3000), st.integers())
def test_jitter_stays_under_the_undelayed_value(backoff: Backoff, n: int, seed: int) -> None:
    """Full jitter is within [0, raw]; equal jitter within [raw/2, raw], attempt by attempt."""
    if backoff.kind == "decorrelated":
        return
    raw = first(Backoff.from_dict({**backoff.describe(), "jitter": "none"}), n)
    for jittered, undelayed in zip(first(backoff, n, seed), raw, strict=True):
        low = undelayed / 2 if backoff.jitter == "equal" else 0.0
        assert low <= jittered <= undelayed


@given(
    st.sampled_from(["constant", "linear", "exponential", "fibonacci", "decorrelated"]),
    st.one_of(st.floats(), st.integers(-10, 10), st.none()),
    st.one_of(st.floats(), st.integers(-10, 10)),
)
def test_construction_either_works_or_raises_config_error(
    kind: str, base: object, cap: object
) -> None:
    """Arbitrary numbers (NaN, inf, negative) build a valid Backoff or raise ConfigError."""
    key = "delay" if kind == "constant" else "base"
    try:
        backoff = Backoff.from_dict({"kind": kind, key: base, "cap": cap})
    except ConfigError:
        return
    assert 0 <= backoff.base <= backoff.cap < math.inf


@given(backoffs(), st.integers(0, 2**32))
def test_first_is_the_first_of_delays(backoff: Backoff, seed: int) -> None:
    """``first(rng)`` draws the same numbers as the first step of ``delays(rng)``."""
    a, b = random.Random(seed), random.Random(seed)
    assert backoff.first(a) == next(backoff.delays(b))
    assert a.random() == b.random()  # and leaves the generator in the same state
