"""PartialFailure: several steps, success when enough of them succeed, failures reported."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.degrade import PartialFailure, PartialFailureError
from buttress.errors import ConfigError


def ok(value: str):
    """A step answering ``value``."""
    return lambda: value


def fails(error: Exception):
    """A step raising ``error``."""

    def step() -> str:
        raise error

    return step


def test_enough_successes_give_the_values_and_the_failures() -> None:
    """Two of three succeed with a minimum of 0.6: the result names the failed step and why."""
    result = PartialFailure(0.6).run(
        {"profile": ok("ann"), "orders": ok("3 orders"), "recs": fails(TimeoutError("slow"))}
    )
    assert result.ok
    assert not result.complete
    assert result.values == {"profile": "ann", "orders": "3 orders"}
    assert result.failed == {"recs": "TimeoutError: slow"}
    assert result.success_rate == pytest.approx(2 / 3)
    assert result.describe() == "2 of 3 steps succeeded; failed: recs (TimeoutError: slow)"


def test_too_few_successes_raise_with_the_result() -> None:
    """Below the minimum: PartialFailureError carrying the result and saying what failed."""
    with pytest.raises(PartialFailureError) as caught:
        PartialFailure(1.0).run([ok("a"), fails(ConnectionError("db down"))])
    result = caught.value.result
    assert result.values == {"<lambda>": "a"}
    assert result.failures[0].name == "step"
    assert isinstance(result.failures[0].error, ConnectionError)
    assert "needed a success rate of 1" in str(caught.value)
    assert "db down" in str(caught.value)


def test_sequence_steps_get_unique_names() -> None:
    """Steps given as a sequence are named after their function, made unique with #n."""
    result = PartialFailure(0.1).run([ok("a"), ok("b"), fails(ValueError())])
    assert list(result.values) == ["<lambda>", "<lambda>#2"]
    assert result.failed == {"step": "ValueError"}


async def test_async_steps_run_concurrently() -> None:
    """Async steps overlap: each waits for the others to have started."""
    started: list[str] = []
    all_started = asyncio.Event()

    def make(name: str):
        async def step() -> str:
            started.append(name)
            if len(started) == 3:
                all_started.set()
            await asyncio.wait_for(all_started.wait(), 1.0)
            return name

        return step

    result = await PartialFailure(1.0).arun({n: make(n) for n in ("a", "b", "c")})
    assert result.values == {"a": "a", "b": "b", "c": "c"}


async def test_arun_mixes_sync_and_async_steps_and_reports_failures() -> None:
    """Sync steps are called, async ones awaited; failures of either kind are reported."""

    async def slow_fail() -> str:
        raise TimeoutError("recs timed out")

    result = await PartialFailure(0.3).arun(
        {"sync": ok("s"), "async": slow_fail, "broken": fails(KeyError("x"))}
    )
    assert result.values == {"sync": "s"}
    assert result.failed == {"async": "TimeoutError: recs timed out", "broken": "KeyError: 'x'"}
    assert (await PartialFailure(0.5).arun({"sync": ok("s"), "a": slow_fail})).ok  # 1 of 2


async def test_cancellation_is_not_a_failure() -> None:
    """A step raising KeyboardInterrupt stops the run instead of counting as a failure."""

    def interrupted() -> str:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        PartialFailure(0.5).run([ok("a"), interrupted])
    with pytest.raises(KeyboardInterrupt):
        await PartialFailure(0.5).arun([ok("a"), interrupted])


def test_run_refuses_async_steps_and_bad_input() -> None:
    """An async step in ``run`` is a TypeError; no steps, a non-callable, a bad rate: errors."""

    async def step() -> None:
        return None

    with pytest.raises(TypeError, match="arun"):
        PartialFailure(0.5).run([step])
    with pytest.raises(ConfigError, match="at least one step"):
        PartialFailure(0.5).run([])
    with pytest.raises(ConfigError) as caught:
        PartialFailure(0.5).run({"x": 3})  # type: ignore[dict-item]
    assert caught.value.field == "steps.x"
    for rate in (0, 1.5, -0.1):
        with pytest.raises(ConfigError, match="min_success_rate"):
            PartialFailure(rate)


@settings(max_examples=200, deadline=None)
@given(outcomes=st.lists(st.booleans(), min_size=1, max_size=20), rate=st.floats(0.01, 1.0))
def test_success_is_exactly_the_rate_rule(outcomes: list[bool], rate: float) -> None:
    """For any steps and rate: it succeeds iff successes/total >= rate; every step is
    reported once, as a value or a failure."""
    steps = {
        f"s{i}": ok(str(i)) if good else fails(RuntimeError(str(i)))
        for i, good in enumerate(outcomes)
    }
    expected = sum(outcomes) / len(outcomes) >= rate
    try:
        result = PartialFailure(rate).run(steps)
    except PartialFailureError as exc:
        result = exc.result
        assert not expected
    else:
        assert expected
    assert len(result.values) == sum(outcomes)
    assert set(result.values) | set(result.failed) == set(steps)
