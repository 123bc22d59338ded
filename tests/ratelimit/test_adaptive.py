"""AdaptiveConcurrency: AIMD and Gradient2 limits follow latency and drops, within bounds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.errors import CircuitOpenError, ConfigError, LoadShedError
from buttress.errors import TimeoutError as ButtressTimeout
from buttress.ratelimit._adaptive import (
    AdaptiveConcurrency,
    Aimd,
    ConcurrencyLimitChanged,
    Gradient2,
)
from buttress.testing import ManualClock, RecordingListener
from tests.conftest import run
from tests.ratelimit.test_concurrency import Held, settle


def gradient2(initial: int = 20, min_limit: int = 1, max_limit: int = 200) -> Gradient2:
    """A Gradient2 core with the documented defaults."""
    return Gradient2(
        initial,
        min_limit,
        max_limit,
        smoothing=0.2,
        tolerance=1.5,
        long_window=600,
        queue_size=4,
    )


# -- the cores --------------------------------------------------------------------------------


def test_aimd_adds_one_on_success_while_the_limit_is_used() -> None:
    """A fast success adds 1 when at least half the limit is in flight, else nothing."""
    core = Aimd(10, 1, 200, latency_threshold=1.0, backoff_ratio=0.9)
    assert core.update(0.1, in_flight=5, dropped=False) == "increase"
    assert core.limit == 11
    assert core.update(0.1, in_flight=5, dropped=False) is None  # 5 * 2 < 11: app-limited
    assert core.limit == 11


def test_aimd_backs_off_on_drops_and_slow_calls() -> None:
    """A drop or a call slower than the threshold multiplies the limit by backoff_ratio."""
    core = Aimd(20, 1, 200, latency_threshold=1.0, backoff_ratio=0.9)
    assert core.update(0.1, in_flight=1, dropped=True) == "drop"
    assert core.limit == 18
    assert core.update(1.5, in_flight=1, dropped=False) == "drop"
    assert core.limit == 16  # floor(18 * 0.9)


def test_aimd_stays_within_its_bounds() -> None:
    """Increases stop at max_limit and decreases at min_limit."""
    core = Aimd(3, 2, 4, latency_threshold=1.0, backoff_ratio=0.5)
    for _ in range(5):
        core.update(0.1, in_flight=4, dropped=False)
    assert core.limit == 4
    for _ in range(5):
        core.update(0.1, in_flight=4, dropped=True)
    assert core.limit == 2


def test_gradient2_grows_by_the_queue_size_while_latency_is_steady() -> None:
    """At steady RTT the gradient is 1, so each sample adds smoothing * queue_size."""
    core = gradient2(initial=20)
    core.update(0.1, in_flight=20, dropped=False)
    assert core.limit == pytest.approx(20.8)
    assert core.long_rtt() == pytest.approx(0.1)


def test_gradient2_shrinks_when_latency_rises() -> None:
    """An RTT far above the long-term average gives the minimum gradient 0.5."""
    core = gradient2(initial=100)
    for _ in range(10):
        core.update(0.1, in_flight=100, dropped=False)
    before = core.limit
    core.update(1.0, in_flight=100, dropped=False)
    # long ~ 0.19 after the sample, short = 1.0: 1.5 * 0.19 < 0.5, so the gradient is 0.5
    assert core.limit == pytest.approx(before * 0.8 + (before * 0.5 + 4) * 0.2)
    assert core.limit < before


def test_gradient2_ignores_samples_when_app_limited() -> None:
    """With fewer than half the limit in flight the limit does not move."""
    core = gradient2(initial=20)
    assert core.update(0.1, in_flight=5, dropped=False) is None
    assert core.limit == 20


def test_gradient2_treats_a_drop_as_the_steepest_gradient() -> None:
    """A drop applies gradient 0.5 and does not feed the long-term RTT."""
    core = gradient2(initial=100)
    assert core.update(30.0, in_flight=1, dropped=True) == "drop"
    assert core.limit == pytest.approx(100 * 0.8 + (50 + 4) * 0.2)
    assert core.long_rtt() is None


def test_gradient2_long_rtt_recovers_after_overload() -> None:
    """When latency falls to under half the long average, the average is cut by 5% at once."""
    core = gradient2(initial=50)
    for _ in range(10):
        core.update(1.0, in_flight=50, dropped=False)
    assert core.long_rtt() == pytest.approx(1.0)
    core.update(0.1, in_flight=50, dropped=False)
    expected = (1.0 + (0.1 - 1.0) * 2 / 601) * 0.95
    assert core.long_rtt() == pytest.approx(expected)


samples = st.lists(
    st.tuples(
        st.floats(0, 100, allow_nan=False),  # rtt
        st.integers(0, 500),  # in flight
        st.booleans(),  # dropped
    ),
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(
    bounds=st.tuples(st.integers(1, 50), st.integers(0, 200), st.integers(0, 400)),
    threshold=st.floats(0.001, 10),
    ratio=st.floats(0.01, 0.99),
    feed=samples,
)
def test_aimd_limit_always_within_bounds(
    bounds: tuple[int, int, int], threshold: float, ratio: float, feed: Any
) -> None:
    """For any samples and options the AIMD limit stays an integer in [min, max]."""
    low, extra, start = bounds
    high = low + extra
    core = Aimd(min(high, low + start), low, high, threshold, ratio)
    for rtt, in_flight, dropped in feed:
        core.update(rtt, in_flight, dropped)
        assert low <= core.limit <= high
        assert core.limit == int(core.limit)


@settings(max_examples=200, deadline=None)
@given(
    bounds=st.tuples(st.integers(1, 50), st.integers(0, 200), st.integers(0, 400)),
    smoothing=st.floats(0.01, 1),
    tolerance=st.floats(1, 5),
    window=st.integers(1, 1000),
    queue=st.floats(0, 50),
    feed=samples,
)
def test_gradient2_limit_always_within_bounds(
    bounds: tuple[int, int, int],
    smoothing: float,
    tolerance: float,
    window: int,
    queue: float,
    feed: Any,
) -> None:
    """For any samples and options the Gradient2 limit stays in [min, max]."""
    low, extra, start = bounds
    high = low + extra
    core = Gradient2(
        min(high, low + start),
        low,
        high,
        smoothing=smoothing,
        tolerance=tolerance,
        long_window=window,
        queue_size=queue,
    )
    for rtt, in_flight, dropped in feed:
        core.update(rtt, in_flight, dropped)
        assert low <= core.limit <= high


# -- the policy -------------------------------------------------------------------------------


async def test_drops_lower_the_limit_and_other_errors_teach_nothing(mode: str) -> None:
    """Errors of on= are drops; other errors and fast successes below half the limit are not."""
    limiter = AdaptiveConcurrency("aimd", initial_limit=10, on=ConnectionError)

    def fail(exc: BaseException) -> None:
        raise exc

    with pytest.raises(ConnectionError):
        await run(mode, limiter, fail, ConnectionError("down"))
    assert limiter.limit == 9
    with pytest.raises(KeyError):
        await run(mode, limiter, fail, KeyError("x"))
    snap = limiter.snapshot()
    assert (snap.limit, snap.samples, snap.drops, snap.in_flight) == (9, 1, 1, 0)


async def test_default_drops_are_timeouts_and_rejections() -> None:
    """By default timeouts and downstream rejections lower the limit; ValueError does not."""
    limiter = AdaptiveConcurrency(initial_limit=100)

    async def fail(exc: BaseException) -> None:
        raise exc

    for exc in (ButtressTimeout("db", 1.0), TimeoutError(), CircuitOpenError("db")):
        with pytest.raises(type(exc)):
            await limiter.acall(fail, exc)
    with pytest.raises(ValueError):
        await limiter.acall(fail, ValueError())
    assert limiter.snapshot().drops == 3
    assert limiter.limit == 72  # 100 -> 90 -> 81 -> 72


async def test_slow_calls_lower_the_limit() -> None:
    """A success slower than latency_threshold counts as a drop (AIMD)."""
    clock = ManualClock()
    limiter = AdaptiveConcurrency(initial_limit=10, latency_threshold=1.0, clock=clock)

    async def slow() -> str:
        await clock.asleep(2.0)
        return "late"

    assert await limiter.acall(slow) == "late"
    snap = limiter.snapshot()
    assert (snap.limit, snap.last_rtt, snap.drops) == (9, 2.0, 0)


async def test_rejected_results_are_drops() -> None:
    """on_result marks a returned value as a drop."""
    limiter = AdaptiveConcurrency(initial_limit=10, on_result=lambda status: status == 503)
    assert limiter.call(lambda: 503) == 503
    assert limiter.limit == 9
    assert limiter.call(lambda: 200) == 200
    assert limiter.limit == 9  # 1 in flight of 9: app-limited, no increase


async def test_limit_grows_under_load_and_sheds_beyond_it() -> None:
    """With the limit in use, successes raise it; beyond it calls are shed."""
    limiter = AdaptiveConcurrency(min_limit=1, initial_limit=2, max_limit=3, name="api")
    held = Held(limiter)
    held.start(0)
    held.start(1)
    await settle()
    with pytest.raises(LoadShedError) as info:
        await limiter.acall(asyncio.sleep, 0)
    assert info.value.source == "api"
    held.finish(0)
    await held.tasks[0]
    assert limiter.limit == 3  # 2 in flight at start of a limit of 2: +1
    held.start(2)
    held.start(3)
    await settle()
    assert limiter.in_flight == 3
    assert limiter.snapshot().rejected == 1
    for key in (1, 2, 3):
        held.finish(key)
    await asyncio.gather(*held.tasks.values())
    assert limiter.limit == 3


async def test_cancellation_is_not_a_sample() -> None:
    """A cancelled call frees its slot and does not move the limit."""
    limiter = AdaptiveConcurrency(initial_limit=1, on=BaseException)
    held = Held(limiter)
    task = held.start(0)
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    snap = limiter.snapshot()
    assert (snap.in_flight, snap.limit, snap.samples) == (0, 1, 0)


def test_limit_changes_are_evented() -> None:
    """Each change of the integer limit emits ConcurrencyLimitChanged with the reason."""
    limiter = AdaptiveConcurrency(initial_limit=10, on=KeyError, name="db")
    with RecordingListener() as events, pytest.raises(KeyError):
        limiter.call(dict[str, int]().__getitem__, "x")
    [change] = events.of(ConcurrencyLimitChanged)
    assert (change.source, change.old, change.new, change.reason) == ("db", 10, 9, "drop")
    assert "limit 10 -> 9" in change.message()


def test_gradient2_snapshot_reports_rtts() -> None:
    """A gradient2 limiter's snapshot carries the last and long-term RTT."""
    clock = ManualClock()
    limiter = AdaptiveConcurrency("gradient2", initial_limit=1, clock=clock)
    limiter.call(clock.sleep, 0.25)
    snap = limiter.snapshot()
    assert (snap.algorithm, snap.last_rtt, snap.long_rtt, snap.samples) == (
        "gradient2",
        0.25,
        0.25,
        1,
    )
    assert snap.limit == 1  # 1.8 truncated
    assert limiter.options.latency_threshold is None
    assert limiter.describe()["options"]["queue_size"] == 4


@settings(max_examples=100, deadline=None)
@given(
    algorithm=st.sampled_from(["aimd", "gradient2"]),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["start", "ok", "drop", "slow"]),
            st.integers(0, 9),
        ),
        max_size=50,
    ),
)
def test_admission_respects_the_current_limit(algorithm: Any, ops: Any) -> None:
    """For any calls and outcomes: the limit stays in bounds and in-flight never exceeds the
    limit at admission, even as the limit moves under running calls."""

    async def scenario() -> None:
        clock = ManualClock()
        limiter = AdaptiveConcurrency(
            algorithm, min_limit=1, initial_limit=2, max_limit=5, on=KeyError, clock=clock
        )
        held = Held(limiter)
        outcomes: dict[int, str] = {}

        async def body(key: int) -> int:
            held.entered.append((limiter.in_flight, limiter.limit))
            await held.gates[key].wait()
            if outcomes[key] == "drop":
                raise KeyError(key)
            if outcomes[key] == "slow":
                await clock.asleep(10.0)
            return key

        held._body = body  # type: ignore[method-assign]
        for number, (op, pick) in enumerate(ops):
            live = [key for key, task in held.tasks.items() if not task.done()]
            if op == "start":
                before, limit = limiter.in_flight, limiter.limit
                task = held.start(number)
                await settle()
                assert task.done() == (before >= limit)
            elif live:
                key = live[pick % len(live)]
                outcomes[key] = op
                held.finish(key)
                await settle()
            assert 1 <= limiter.limit <= 5
        for key in held.tasks:
            outcomes.setdefault(key, "ok")
            held.finish(key)
        await asyncio.gather(*held.tasks.values(), return_exceptions=True)
        assert all(in_flight <= limit for in_flight, limit in held.entered)
        assert limiter.in_flight == 0
        assert 1 <= limiter.limit <= 5

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"algorithm": "vegas"}, "algorithm"),
        ({"min_limit": 0}, "min_limit"),
        ({"min_limit": 5, "max_limit": 4}, "max_limit"),
        ({"initial_limit": 500}, "initial_limit"),
        ({"initial_limit": 2.5}, "initial_limit"),
        ({"latency_threshold": 0}, "latency_threshold"),
        ({"backoff_ratio": 1.0}, "backoff_ratio"),
        ({"backoff_ratio": float("nan")}, "backoff_ratio"),
        ({"smoothing": 0.5}, "smoothing"),  # gradient2's option on aimd
        ({"algorithm": "gradient2", "latency_threshold": 1.0}, "latency_threshold"),
        ({"algorithm": "gradient2", "smoothing": 0}, "smoothing"),
        ({"algorithm": "gradient2", "smoothing": 1.5}, "smoothing"),
        ({"algorithm": "gradient2", "tolerance": 0.5}, "tolerance"),
        ({"algorithm": "gradient2", "long_window": 0}, "long_window"),
        ({"algorithm": "gradient2", "queue_size": -1}, "queue_size"),
        ({"on": 42}, "on"),
        ({"on_result": 42}, "on_result"),
    ],
)
def test_bad_options_are_rejected(kwargs: dict[str, Any], field: str) -> None:
    """Invalid options raise ConfigError naming the field."""
    with pytest.raises(ConfigError, match=f"^{field}: ") as info:
        AdaptiveConcurrency(**kwargs)
    assert info.value.field == field
