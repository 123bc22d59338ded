"""Hedge: extra attempts for slow asyncio calls; first success wins, the rest are cancelled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from buttress.errors import ConfigError
from buttress.events import HedgeLaunched
from buttress.hedge import Hedge, HedgeSnapshot
from buttress.testing import ManualClock, RecordingListener


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


class Attempts:
    """A call whose n-th attempt follows ``plan[n]``: "hang", "ok" or an exception to raise."""

    def __init__(self, *plan: Any) -> None:
        self.plan = plan
        self.started: list[int] = []
        self.cancelled: list[int] = []
        self.gates = [asyncio.Event() for _ in plan]

    async def __call__(self, tag: str) -> str:
        number = len(self.started)
        self.started.append(number)
        step = self.plan[number]
        try:
            if step == "hang":
                await self.gates[number].wait()
            elif step == "slow-ok":
                await self.gates[number].wait()
                return f"{tag}-{number}"
            elif isinstance(step, BaseException):
                raise step
        except asyncio.CancelledError:
            self.cancelled.append(number)
            raise
        return f"{tag}-{number}"


async def test_fast_primary_needs_no_hedge() -> None:
    """A primary that finishes within the delay wins alone."""
    clock = ManualClock()
    hedge = Hedge(delay=1, clock=clock)
    attempts = Attempts("ok")
    assert await hedge.acall(attempts, "x") == "x-0"
    clock.advance(5)
    assert attempts.started == [0]
    assert hedge.snapshot() == HedgeSnapshot("hedge", 0, 0)


async def test_slow_primary_is_hedged_and_cancelled() -> None:
    """After the delay a hedge starts; when it wins the primary is cancelled and awaited."""
    clock = ManualClock()
    hedge = Hedge(delay=0.5, clock=clock)
    attempts = Attempts("hang", "ok")
    call = asyncio.create_task(hedge.acall(attempts, "x"))
    await settle()
    clock.advance(0.4)
    await settle()
    assert attempts.started == [0]
    clock.advance(0.1)
    assert await call == "x-1"
    assert attempts.cancelled == [0]
    assert hedge.snapshot() == HedgeSnapshot("hedge", 1, 1)


async def test_hedges_follow_each_delay_up_to_max() -> None:
    """Each further delay starts another hedge, up to max_hedged."""
    clock = ManualClock()
    hedge = Hedge(delay=1, max_hedged=2, clock=clock)
    attempts = Attempts("hang", "hang", "slow-ok")
    call = asyncio.create_task(hedge.acall(attempts, "x"))
    for expected in ([0, 1], [0, 1, 2], [0, 1, 2]):
        await settle()
        clock.advance(1)
        await settle()
        assert attempts.started == expected
    attempts.gates[2].set()
    assert await call == "x-2"
    assert sorted(attempts.cancelled) == [0, 1]
    assert hedge.launched == 2


async def test_primary_can_still_win() -> None:
    """If the primary answers after a hedge started, the primary wins and the hedge is cancelled."""
    clock = ManualClock()
    hedge = Hedge(delay=1, clock=clock)
    attempts = Attempts("slow-ok", "hang")
    call = asyncio.create_task(hedge.acall(attempts, "x"))
    await settle()
    clock.advance(1)
    await settle()
    attempts.gates[0].set()
    assert await call == "x-0"
    assert attempts.cancelled == [1]
    assert hedge.snapshot() == HedgeSnapshot("hedge", 1, 0)


async def test_failure_launches_the_next_hedge_at_once() -> None:
    """A failed attempt starts the next hedge without waiting for the delay."""
    hedge = Hedge(delay=60, clock=ManualClock())
    attempts = Attempts(ConnectionError("reset"), "ok")
    assert await hedge.acall(attempts, "x") == "x-1"
    assert hedge.launched == 1


async def test_all_failing_raises_the_first_attempts_error() -> None:
    """When every attempt fails the primary's error is raised, with a note."""
    hedge = Hedge(delay=60, max_hedged=2, clock=ManualClock(), name="search")
    first = ConnectionError("first")
    attempts = Attempts(first, KeyError("second"), ValueError("third"))
    with pytest.raises(ConnectionError) as info:
        await hedge.acall(attempts, "x")
    assert info.value is first
    assert info.value.__notes__ == [
        "buttress hedge 'search': all 3 attempts failed; this is the first attempt's error"
    ]
    assert attempts.started == [0, 1, 2]


async def test_cancelling_the_caller_cancels_every_attempt() -> None:
    """Cancelling the hedged call cancels and awaits all running attempts."""
    clock = ManualClock()
    attempts = Attempts("hang", "hang")
    call = asyncio.create_task(Hedge(delay=1, clock=clock).acall(attempts, "x"))
    await settle()
    clock.advance(1)
    await settle()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert sorted(attempts.cancelled) == [0, 1]


async def test_zero_delay_starts_every_attempt_together() -> None:
    """With delay=0 the primary and all hedges race from the start."""
    attempts = Attempts("hang", "hang", "ok")
    assert await Hedge(delay=0, max_hedged=2).acall(attempts, "x") == "x-2"
    assert attempts.started == [0, 1, 2]
    assert sorted(attempts.cancelled) == [0, 1]


async def test_launch_emits_an_event() -> None:
    """Each hedged attempt is reported as a HedgeLaunched event."""
    with RecordingListener() as events:
        await Hedge(delay=0, name="h").acall(Attempts("hang", "ok"), "x")
    (event,) = events.of(HedgeLaunched)
    assert (event.source, event.hedge) == ("h", 1)


async def test_async_decorator() -> None:
    """A decorated async function is hedged."""
    attempts = Attempts("hang", "ok")

    @Hedge(delay=0)
    async def fetch(tag: str) -> str:
        return await attempts(tag)

    assert await fetch("y") == "y-1"


def test_sync_use_is_a_type_error() -> None:
    """Hedge refuses sync calls, directly or through a decorator."""
    hedge = Hedge(delay=1)
    with pytest.raises(TypeError, match="asyncio calls only"):
        hedge.call(lambda: 1)

    @hedge
    def sync() -> int:
        return 1

    with pytest.raises(TypeError, match="asyncio calls only"):
        sync()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"delay": -1}, "delay"),
        ({"delay": float("nan")}, "delay"),
        ({"delay": 1, "max_hedged": 0}, "max_hedged"),
        ({"delay": 1, "max_hedged": 1.5}, "max_hedged"),
    ],
)
def test_bad_options_are_rejected(kwargs: dict[str, Any], field: str) -> None:
    """A negative delay or fewer than one hedge raises ConfigError naming the field."""
    with pytest.raises(ConfigError, match=f"^{field}: ") as info:
        Hedge(**kwargs)
    assert info.value.field == field


def test_describe_lists_the_options() -> None:
    """describe() reports delay and max_hedged."""
    assert Hedge(delay=0.2, max_hedged=3).describe()["options"] == {"delay": 0.2, "max_hedged": 3}
