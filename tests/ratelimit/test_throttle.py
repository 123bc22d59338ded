"""AdaptiveThrottle: the SRE book's local rejection probability over a sliding time window."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.errors import ConfigError, LoadShedError
from buttress.ratelimit._concurrency import LoadShedChanged
from buttress.ratelimit._throttle import (
    BUCKETS,
    AdaptiveThrottle,
    ThrottleSnapshot,
    rejection_probability,
)
from buttress.testing import ManualClock, RecordingListener
from tests.conftest import run


class FixedRandom(random.Random):
    """Random numbers that are always ``value``: 1.0 never rejects, 0.0 rejects whenever p > 0."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value
        self.draws = 0

    def random(self) -> float:
        self.draws += 1
        return self.value


def fail() -> None:
    """A backend that rejects the request."""
    raise ConnectionError("overloaded")


def outcome(throttle: AdaptiveThrottle, accepted: bool) -> None:
    """One call through the throttle that the backend accepts or rejects."""
    if accepted:
        throttle.call(lambda: None)
    else:
        with pytest.raises(ConnectionError):
            throttle.call(fail)


def test_healthy_backend_is_never_throttled() -> None:
    """While the backend accepts everything the probability is 0 and no draw is made."""
    rng = FixedRandom(0.0)
    throttle = AdaptiveThrottle(clock=ManualClock(), rng=rng)
    for _ in range(100):
        throttle.call(lambda: None)
    assert throttle.probability == 0.0
    assert rng.draws == 0
    assert throttle.snapshot() == ThrottleSnapshot("throttle", 100, 100, 0.0, 0, False)


async def test_rejects_locally_with_the_sre_probability(mode: str) -> None:
    """After 10 rejections and 2 accepts the probability is (12 - 2*2) / 13; a draw below it
    refuses the call locally without calling the backend, and counts as a request."""
    rng = FixedRandom(1.0)
    throttle = AdaptiveThrottle(2.0, name="backend", clock=ManualClock(), rng=rng)
    for accepted in [True, True] + [False] * 10:
        outcome(throttle, accepted)
    assert throttle.probability == pytest.approx(8 / 13)
    rng.value = 8 / 13 - 0.01
    calls: list[int] = []
    with pytest.raises(LoadShedError) as info:
        await run(mode, throttle, calls.append, 1)
    assert calls == []
    assert (info.value.source, info.value.retry_after) == ("backend", None)
    snap = throttle.snapshot()
    assert (snap.requests, snap.accepts, snap.rejected) == (13, 2, 1)
    assert snap.probability == pytest.approx(9 / 14)
    rng.value = 9 / 14 + 0.01  # a draw above the probability goes through
    await run(mode, throttle, calls.append, 2)
    assert calls == [2]


def test_only_errors_of_on_are_rejections() -> None:
    """Errors outside on= count as accepted; on_result marks results as rejections."""
    throttle = AdaptiveThrottle(
        on=ConnectionError, on_result=lambda status: status == 429, clock=ManualClock()
    )
    with pytest.raises(KeyError):
        throttle.call(dict[str, int]().__getitem__, "x")
    assert throttle.call(lambda: 429) == 429
    assert throttle.call(lambda: 200) == 200
    snap = throttle.snapshot()
    assert (snap.requests, snap.accepts) == (3, 2)


async def test_cancellation_is_not_counted() -> None:
    """A cancelled call is neither a request nor an accept."""
    throttle = AdaptiveThrottle(clock=ManualClock())
    task = asyncio.create_task(throttle.acall(asyncio.sleep, 10))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert throttle.snapshot().requests == 0


def test_counts_leave_the_window() -> None:
    """Rejections older than the window no longer count; the probability returns to 0."""
    clock = ManualClock()
    throttle = AdaptiveThrottle(window=60, clock=clock, rng=FixedRandom(1.0))
    for _ in range(10):
        outcome(throttle, False)
    assert throttle.probability == pytest.approx(10 / 11)
    clock.advance(60 - 60 / BUCKETS - 0.001)
    assert throttle.snapshot().requests == 10  # still inside
    clock.advance(60 / BUCKETS + 0.001)  # 60 s after the calls
    assert throttle.snapshot() == ThrottleSnapshot("throttle", 0, 0, 0.0, 0, False)


def test_shedding_episode_is_evented() -> None:
    """The first local rejection starts an episode; the first pass a while later ends it."""
    clock = ManualClock()
    rng = FixedRandom(0.0)
    throttle = AdaptiveThrottle(name="b", clock=clock, rng=rng)
    with RecordingListener() as events:
        outcome(throttle, False)
        for _ in range(2):
            with pytest.raises(LoadShedError):
                throttle.call(lambda: None)
        assert throttle.snapshot().shedding
        rng.value = 1.0
        clock.advance(5)
        throttle.call(lambda: None)
    changes = events.of(LoadShedChanged)
    assert [(e.source, e.shedding, e.shed) for e in changes] == [("b", True, 0), ("b", False, 2)]


def test_async_decorator_counts_accepts() -> None:
    """Decorated async calls are counted like acall."""
    throttle = AdaptiveThrottle(clock=ManualClock())

    @throttle
    async def fetch(x: int) -> int:
        return x

    assert asyncio.run(fetch(3)) == 3
    assert throttle.snapshot().accepts == 1


@settings(max_examples=200, deadline=None)
@given(
    k=st.floats(1, 10),
    outcomes=st.lists(st.booleans(), max_size=100),
)
def test_probability_follows_the_formula(k: float, outcomes: list[bool]) -> None:
    """For any outcomes in one window, p = max(0, (requests - k*accepts) / (requests + 1))."""
    throttle = AdaptiveThrottle(k, clock=ManualClock(), rng=FixedRandom(1.0))
    for accepted in outcomes:
        outcome(throttle, accepted)
    requests, accepts = len(outcomes), sum(outcomes)
    snap = throttle.snapshot()
    assert (snap.requests, snap.accepts) == (requests, accepts)
    expected = max(0.0, (requests - k * accepts) / (requests + 1))
    assert snap.probability == pytest.approx(expected)
    assert snap.probability == rejection_probability(requests, accepts, k)
    assert 0 <= snap.probability < 1


@settings(max_examples=200, deadline=None)
@given(
    window=st.floats(1, 100),
    events=st.lists(st.tuples(st.floats(0, 50), st.booleans()), max_size=60),
    later=st.floats(0, 200),
)
def test_a_count_lives_between_window_minus_a_bucket_and_window(
    window: float, events: list[tuple[float, bool]], later: float
) -> None:
    """For any timed outcomes, a count is kept while younger than window - window/BUCKETS and
    gone once it is window old."""
    clock = ManualClock(1000.0)
    throttle = AdaptiveThrottle(window=window, clock=clock, rng=FixedRandom(1.0))
    times = []
    for gap, accepted in events:
        clock.advance(gap)
        outcome(throttle, accepted)
        times.append((clock.monotonic(), accepted))
    clock.advance(later)
    now = clock.monotonic()
    snap = throttle.snapshot()
    surely_in = [a for t, a in times if now - t < window - window / BUCKETS - 1e-9]
    maybe_in = [a for t, a in times if now - t < window + 1e-9]
    assert len(surely_in) <= snap.requests <= len(maybe_in)
    assert sum(surely_in) <= snap.accepts <= sum(maybe_in)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"k": 0.5}, "k"),
        ({"k": float("nan")}, "k"),
        ({"k": float("inf")}, "k"),
        ({"window": 0}, "window"),
        ({"window": -5}, "window"),
        ({"on": "errors"}, "on"),
        ({"on_result": 1}, "on_result"),
        ({"rng": 42}, "rng"),
    ],
)
def test_bad_options_are_rejected(kwargs: dict[str, Any], field: str) -> None:
    """Invalid options raise ConfigError naming the field."""
    with pytest.raises(ConfigError, match=f"^{field}: ") as info:
        AdaptiveThrottle(**kwargs)
    assert info.value.field == field
