"""RetryBudget(shared=store): one budget for several holders, and local fallback."""

from __future__ import annotations

from buttress.fleet import SharedRetryBudget
from buttress.retry import RetryBudget
from buttress.stores import MemoryStore, Store


def shared(store: Store) -> SharedRetryBudget:
    """A fleet budget: retries <= half the calls, no reserve to speak of."""
    budget = RetryBudget(0.5, 0.001, 10.0, name="api", shared=store, sync_interval=60.0)
    assert isinstance(budget, SharedRetryBudget)
    return budget


def test_without_shared_it_is_the_local_budget() -> None:
    """No ``shared``: the plain class."""
    assert type(RetryBudget()) is RetryBudget


def test_deposits_of_one_holder_fund_the_other(any_store: Store) -> None:
    """Calls recorded by A allow retries in B, and B's retries are seen by A after a sync."""
    a, b = shared(any_store), shared(any_store)
    try:
        for _ in range(10):
            a.record_call()
        a.sync()
        b.sync()
        assert [b.try_spend() for _ in range(6)] == [True] * 5 + [False]
        b.sync()
        a.sync()
        assert not a.try_spend()
    finally:
        a.close()
        b.close()


def test_store_failure_falls_back_to_the_local_budget() -> None:
    """A closed store: decisions use the local buckets, and the budget says it is degraded."""
    store = MemoryStore()
    budget = shared(store)
    try:
        store.close()
        for _ in range(4):
            budget.record_call()
        budget._fresh_until = 0.0  # as if three sync intervals had passed without news
        budget.sync()
        assert budget.degraded
        assert [budget.try_spend() for _ in range(3)] == [True, True, False]
    finally:
        budget.close()
