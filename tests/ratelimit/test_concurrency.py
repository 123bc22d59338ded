"""ConcurrencyLimiter: at most N in flight, the rest shed at once, shedding episodes evented."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.errors import ConfigError, LoadShedError, RejectedError
from buttress.ratelimit._concurrency import (
    QUIET,
    ConcurrencyLimiter,
    ConcurrencySnapshot,
    LoadShedChanged,
)
from buttress.testing import ManualClock, RecordingListener
from tests.conftest import run


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


class Held:
    """Async calls that enter a policy and stay inside until released."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.gates: dict[int, asyncio.Event] = {}
        self.tasks: dict[int, asyncio.Task[int]] = {}
        self.entered: list[tuple[int, int]] = []  # (in_flight, limit) seen on entry

    async def _body(self, key: int) -> int:
        self.entered.append((self.policy.in_flight, self.policy.limit))
        await self.gates[key].wait()
        return key

    def start(self, key: int) -> asyncio.Task[int]:
        self.gates[key] = asyncio.Event()
        task = asyncio.create_task(self.policy.acall(self._body, key))
        self.tasks[key] = task
        return task

    def finish(self, key: int) -> None:
        self.gates[key].set()


async def test_admits_up_to_max_and_sheds_the_rest() -> None:
    """With max calls in flight the next call is refused with a new LoadShedError each time."""
    limiter = ConcurrencyLimiter(2, name="api")
    held = Held(limiter)
    held.start(1)
    held.start(2)
    await settle()
    calls: list[int] = []
    with pytest.raises(LoadShedError) as first:
        await limiter.acall(asyncio.sleep, 0)
    with pytest.raises(LoadShedError) as second:
        limiter.call(calls.append, 1)
    assert calls == []
    assert first.value is not second.value
    assert isinstance(first.value, RejectedError)
    assert (first.value.source, first.value.retry_after) == ("api", None)
    assert limiter.snapshot() == ConcurrencySnapshot("api", 2, 2, 2, True)
    held.finish(1)
    held.finish(2)
    assert await asyncio.gather(*held.tasks.values()) == [1, 2]
    assert limiter.in_flight == 0
    assert await limiter.acall(asyncio.sleep, 0, "ok") == "ok"


async def test_errors_give_the_slot_back(mode: str) -> None:
    """A call that raises releases its slot, sync and async alike."""
    limiter = ConcurrencyLimiter(1)

    def boom() -> None:
        raise KeyError("x")

    for _ in range(3):
        with pytest.raises(KeyError):
            await run(mode, limiter, boom)
    assert limiter.in_flight == 0
    assert limiter.snapshot().rejected == 0


async def test_cancelled_call_gives_the_slot_back() -> None:
    """Cancelling a task inside the limiter frees its slot."""
    limiter = ConcurrencyLimiter(1)
    held = Held(limiter)
    task = held.start(0)
    await settle()
    assert limiter.in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.in_flight == 0


def test_threads_never_exceed_the_limit() -> None:
    """Eight threads hammering a limit of 3: never more than 3 inside, every slot returned."""
    limiter = ConcurrencyLimiter(3)
    inside = 0
    peak = 0
    lock = threading.Lock()
    outcomes = {"ran": 0, "shed": 0}

    def body() -> None:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        time.sleep(0.001)
        with lock:
            inside -= 1

    def worker() -> None:
        for _ in range(30):
            try:
                limiter.call(body)
                key = "ran"
            except LoadShedError:
                key = "shed"
            with lock:
                outcomes[key] += 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert peak <= 3
    assert outcomes["ran"] + outcomes["shed"] == 240
    assert outcomes["shed"] == limiter.snapshot().rejected
    assert limiter.in_flight == 0


def test_decorators_keep_working() -> None:
    """The limiter decorates sync and async functions and keeps their results."""
    limiter = ConcurrencyLimiter(1)

    @limiter
    def double(x: int) -> int:
        assert limiter.in_flight == 1
        return x * 2

    @limiter
    async def triple(x: int) -> int:
        assert limiter.in_flight == 1
        return x * 3

    assert double(2) == 4
    assert asyncio.run(triple(2)) == 6
    assert limiter.in_flight == 0


async def test_shedding_episode_is_evented_once_each_way() -> None:
    """The first rejection starts an episode; the first admission QUIET seconds later ends it."""
    clock = ManualClock()
    limiter = ConcurrencyLimiter(1, name="api", clock=clock)
    held = Held(limiter)
    with RecordingListener() as events:
        held.start(0)
        await settle()
        for _ in range(3):
            with pytest.raises(LoadShedError):
                limiter.call(lambda: None)
        held.finish(0)
        await held.tasks[0]
        clock.advance(QUIET / 2)
        limiter.call(lambda: None)  # too soon: still the same episode
        assert limiter.snapshot().shedding
        clock.advance(QUIET / 2)
        assert not limiter.snapshot().shedding
        limiter.call(lambda: None)
        limiter.call(lambda: None)
    changes = events.of(LoadShedChanged)
    assert [(e.shedding, e.shed) for e in changes] == [(True, 0), (False, 3)]
    assert changes[0].source == "api"
    assert "stopped after shedding 3 calls" in changes[1].message()


async def test_limiters_compose_in_a_pipeline() -> None:
    """The shedding policies run inside a Pipeline, sync and async, and pass arguments on."""
    from buttress import Pipeline
    from buttress.ratelimit import AdaptiveConcurrency, AdaptiveThrottle

    pipeline = Pipeline(ConcurrencyLimiter(1), AdaptiveConcurrency(), AdaptiveThrottle())
    assert pipeline.call(pow, 2, 5) == 32

    async def apow(base: int, exp: int) -> int:
        return int(base**exp)

    assert await pipeline.acall(apow, 3, 2) == 9
    policies = [entry["policy"] for entry in pipeline.describe()["policies"]]
    assert policies == ["ConcurrencyLimiter", "AdaptiveConcurrency", "AdaptiveThrottle"]


def test_describe_names_the_options() -> None:
    """describe() gives the type, the name and the limit as plain data."""
    assert ConcurrencyLimiter(5, name="db").describe() == {
        "policy": "ConcurrencyLimiter",
        "name": "db",
        "options": {"max": 5},
    }
    assert "in_flight=0/5" in repr(ConcurrencyLimiter(5))


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "3", None])
def test_bad_max_is_rejected(value: Any) -> None:
    """A max that is not a positive integer raises ConfigError naming the field and value."""
    with pytest.raises(ConfigError, match=r"^max: ") as info:
        ConcurrencyLimiter(value)
    assert info.value.value == value


@settings(max_examples=100, deadline=None)
@given(
    limit=st.integers(1, 4),
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 9)), max_size=40),
)
def test_in_flight_never_exceeds_the_limit(limit: int, ops: list[tuple[bool, int]]) -> None:
    """For any sequence of starts and finishes, a call is admitted iff fewer than max run."""

    async def scenario() -> None:
        limiter = ConcurrencyLimiter(limit)
        held = Held(limiter)
        for number, (start, pick) in enumerate(ops):
            live = [key for key, task in held.tasks.items() if not task.done()]
            if start:
                before = limiter.in_flight
                task = held.start(number)
                await settle()
                assert task.done() == (before >= limit)  # refused at once, or still running
            elif live:
                held.finish(live[pick % len(live)])
                await settle()
            assert limiter.in_flight == sum(not t.done() for t in held.tasks.values())
            assert limiter.in_flight <= limit
        for key in held.tasks:
            held.finish(key)
        await asyncio.gather(*held.tasks.values(), return_exceptions=True)
        assert all(in_flight <= lim for in_flight, lim in held.entered)
        assert limiter.in_flight == 0

    asyncio.run(scenario())
