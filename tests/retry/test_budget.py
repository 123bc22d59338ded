"""RetryBudget: the Finagle-style allowance of retries over a sliding window of time buckets."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress import ConfigError
from buttress.retry import BudgetStats, RetryBudget
from buttress.testing import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def spend_all(budget: RetryBudget, limit: int = 10_000) -> int:
    spent = 0
    while spent < limit and budget.try_spend():
        spent += 1
    return spent


def test_reserve_allows_min_per_second_times_ttl(clock: ManualClock) -> None:
    """With no traffic, min_per_second * ttl retries are allowed, then none."""
    budget = RetryBudget(ratio=0.2, min_per_second=1, ttl=10, clock=clock)
    assert spend_all(budget) == 10
    assert budget.try_spend() is False


def test_calls_deposit_ratio_of_a_retry(clock: ManualClock) -> None:
    """Each first attempt adds ``ratio`` retries to the allowance."""
    budget = RetryBudget(ratio=0.2, min_per_second=0, ttl=10, clock=clock)
    for _ in range(100):
        budget.record_call()
    assert spend_all(budget) == 20


def test_spent_retries_expire_after_ttl(clock: ManualClock) -> None:
    """Retries older than ttl no longer count, so the allowance comes back."""
    budget = RetryBudget(ratio=0.2, min_per_second=0.5, ttl=10, clock=clock)
    assert spend_all(budget) == 5
    clock.advance(5)
    assert budget.try_spend() is False  # still inside the window
    clock.advance(5)
    assert spend_all(budget) == 5


def test_deposits_expire_after_ttl(clock: ManualClock) -> None:
    """Calls older than ttl no longer lift the allowance."""
    budget = RetryBudget(ratio=1.0, min_per_second=0, ttl=10, clock=clock)
    for _ in range(3):
        budget.record_call()
    clock.advance(10)
    assert budget.try_spend() is False
    assert budget.snapshot() == BudgetStats(calls=0, retries=0, available=0)


def test_window_moves_bucket_by_bucket(clock: ManualClock) -> None:
    """The window expires counts one bucket (ttl / 10) at a time."""
    budget = RetryBudget(ratio=1.0, min_per_second=0, ttl=10, clock=clock)
    budget.record_call()  # in the bucket [0, 1)
    clock.advance(5)
    budget.record_call()  # in the bucket [5, 6)
    clock.advance(5)
    assert budget.snapshot().calls == 1  # the first bucket left the window at t=10
    clock.advance(5)
    assert budget.snapshot().calls == 0


def test_long_idle_gap_resets_everything(clock: ManualClock) -> None:
    """After an idle gap far longer than ttl, the window is empty (and nothing grew)."""
    budget = RetryBudget(ratio=0.5, min_per_second=1, ttl=2, clock=clock)
    for _ in range(50):
        budget.record_call()
    spend_all(budget)
    clock.advance(1e9)
    assert budget.snapshot() == BudgetStats(calls=0, retries=0, available=2)


def test_snapshot_reports_calls_retries_and_available(clock: ManualClock) -> None:
    """snapshot() gives the window's calls and retries and how many retries remain."""
    budget = RetryBudget(ratio=0.5, min_per_second=0.1, ttl=10, clock=clock)
    for _ in range(4):
        budget.record_call()
    assert budget.try_spend()
    assert budget.snapshot() == BudgetStats(calls=4, retries=1, available=2)


def test_record_call_is_exact_under_threads(clock: ManualClock) -> None:
    """Deposits and withdrawals from many threads are all counted."""
    budget = RetryBudget(ratio=1.0, min_per_second=0, ttl=10, clock=clock)
    spent: list[int] = []

    def worker() -> None:
        mine = 0
        for _ in range(2000):
            budget.record_call()
            mine += budget.try_spend()
        spent.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = budget.snapshot()
    assert stats.calls == 16_000
    assert stats.retries == sum(spent) == 16_000  # ratio 1: each call pays for one retry


@given(
    st.floats(min_value=0, max_value=5),
    st.floats(min_value=0, max_value=20),
    st.floats(min_value=0.1, max_value=60),
    st.lists(st.tuples(st.sampled_from(["call", "spend"]), st.floats(0, 3)), max_size=200),
)
def test_retries_never_exceed_the_formula(
    ratio: float, per_second: float, ttl: float, steps: list[tuple[str, float]]
) -> None:
    """A retry is granted exactly when it keeps the window's retries within the formula."""
    if ratio == 0 and per_second == 0:
        return
    clock = ManualClock()
    budget = RetryBudget(ratio=ratio, min_per_second=per_second, ttl=ttl, clock=clock)
    for action, wait in steps:
        clock.advance(wait)
        if action == "call":
            budget.record_call()
            continue
        before = budget.snapshot()
        limit = ratio * before.calls + per_second * ttl + 1e-9
        granted = budget.try_spend()
        assert granted == (before.retries + 1 <= limit)
        assert budget.snapshot().retries == before.retries + granted
        assert before.available == max(0, math.floor(limit - before.retries))


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"ratio": -0.1}, "ratio"),
        ({"ratio": math.nan}, "ratio"),
        ({"min_per_second": -1}, "min_per_second"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": math.inf}, "ttl"),
        ({"ratio": 0, "min_per_second": 0}, "ratio"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_options_raise_config_error(options: dict[str, Any], field: str) -> None:
    """Invalid budget options raise ConfigError naming the field."""
    with pytest.raises(ConfigError) as info:
        RetryBudget(**options)
    assert info.value.field == field


def test_describe_and_repr() -> None:
    """describe() gives name and settings; repr shows them too."""
    budget = RetryBudget(ratio=0.1, min_per_second=5, ttl=30, name="payments")
    assert budget.describe() == {
        "name": "payments",
        "ratio": 0.1,
        "min_per_second": 5.0,
        "ttl": 30.0,
    }
    assert repr(budget) == "RetryBudget(ratio=0.1, min_per_second=5, ttl=30, name='payments')"
