"""Retry's bounds and hints: timeout, outer deadline, Retry-After (attribute and HTTP), budget."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.utils import formatdate

import httpx
import pytest

from buttress import RateLimitedError
from buttress import TimeoutError as ButtressTimeout
from buttress._deadline import DEADLINE
from buttress.events import RetryExhausted
from buttress.retry import Backoff, Retry, RetryBudget
from buttress.testing import ManualClock, RecordingListener
from tests.conftest import run

WALL = 1_700_000_000.0  # ManualClock's default wall time at start


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def always(error: type[BaseException] | BaseException, clock: ManualClock | None = None, took=0.0):
    """A call that takes ``took`` seconds of ``clock`` time and then fails."""
    calls: list[float] = []

    def fn() -> None:
        if clock is not None:
            calls.append(clock.monotonic())
            clock.advance(took)
        raise error if isinstance(error, BaseException) else error()

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


@contextmanager
def outer_deadline(when: float, clock: ManualClock) -> Iterator[None]:
    """Set an outer Timeout's deadline (what Timeout puts in DEADLINE) inside the block."""
    token = DEADLINE.set((when, clock))
    try:
        yield
    finally:
        DEADLINE.reset(token)


# -- timeout -------------------------------------------------------------------------------------


async def test_timeout_stops_before_a_sleep_would_pass_it(mode: str, clock: ManualClock) -> None:
    """Retry never sleeps past ``timeout``: it stops and raises the last error instead."""
    policy = Retry(
        on=ConnectionError, attempts=10, backoff=Backoff.constant(0.4), timeout=1.0, clock=clock
    )
    with pytest.raises(ConnectionError) as info:
        await run(mode, policy, always(ConnectionError))
    assert clock.sleeps == [0.4, 0.4]  # a third sleep would end at 1.2s
    assert info.value.__notes__ == [
        "retry 'retry': gave up after 3 attempts (the next attempt would pass the 1s timeout)"
    ]


async def test_timeout_counts_time_spent_in_attempts(mode: str, clock: ManualClock) -> None:
    """The timeout is measured from the first attempt's start, attempts' own time included."""
    policy = Retry(
        on=ConnectionError, attempts=10, backoff=Backoff.constant(0.1), timeout=1.0, clock=clock
    )
    fn = always(ConnectionError, clock, took=0.6)
    with pytest.raises(ConnectionError):
        await run(mode, policy, fn)
    assert fn.calls == [0.0, 0.7]  # 0.7 + 0.6 + 0.1 would pass 1.0


async def test_timeout_accepts_timedelta(mode: str, clock: ManualClock) -> None:
    """timeout may be a timedelta; it is normalised to seconds."""
    policy = Retry(on=ConnectionError, timeout=timedelta(seconds=2), clock=clock)
    assert policy.options.timeout == 2.0


async def test_outer_deadline_bounds_the_sleeps(mode: str, clock: ManualClock) -> None:
    """With an outer Timeout's deadline in DEADLINE, no sleep passes it."""
    policy = Retry(on=ConnectionError, attempts=10, backoff=Backoff.constant(0.3), clock=clock)
    with (
        outer_deadline(0.5, clock),
        RecordingListener() as events,
        pytest.raises(ConnectionError) as info,
    ):
        await run(mode, policy, always(ConnectionError))
    assert clock.sleeps == [0.3]
    assert "(the next attempt would pass the outer deadline)" in info.value.__notes__[0]
    assert events.of(RetryExhausted)[0].reason == "the next attempt would pass the outer deadline"


async def test_outer_deadline_is_read_on_its_own_clock(mode: str, clock: ManualClock) -> None:
    """The deadline is compared with the clock stored beside it, not with the retry's clock."""
    outer = ManualClock(start=100.0)
    policy = Retry(on=ConnectionError, attempts=10, backoff=Backoff.constant(0.1), clock=clock)
    with outer_deadline(100.25, outer), pytest.raises(ConnectionError):
        await run(mode, policy, always(ConnectionError))
    assert clock.sleeps == [0.1] * 9  # the outer clock never moved: 0.25s stay left


async def test_expired_deadline_stops_even_zero_delays(mode: str, clock: ManualClock) -> None:
    """Once the outer deadline has passed, not even an immediate retry is made."""
    fn = always(ConnectionError, clock)
    policy = Retry(on=ConnectionError, backoff=Backoff.constant(0), clock=clock)
    with outer_deadline(-1.0, clock), pytest.raises(ConnectionError):
        await run(mode, policy, fn)
    assert len(fn.calls) == 1


# -- retry_after hints ---------------------------------------------------------------------------


class Throttled(Exception):
    """Any exception with a ``retry_after`` attribute gives a hint."""

    def __init__(self, retry_after: object) -> None:
        super().__init__("throttled")
        self.retry_after = retry_after


class BrokenHint(Exception):
    """An exception whose retry_after property itself fails."""

    @property
    def retry_after(self) -> float:
        raise TypeError("no hint today")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RateLimitedError("api", 2.5), 2.5),
        (BrokenHint(), 0.1),
        (Throttled(timedelta(seconds=3)), 3.0),
        (Throttled(0.01), 0.1),
        (Throttled(60), 5.0),
        (Throttled(-1.0), 0.1),
        (Throttled(math.nan), 0.1),
        (Throttled("soon"), 0.1),
    ],
    ids=[
        "float",
        "broken-property",
        "timedelta",
        "shorter",
        "clamped-to-cap",
        "negative",
        "nan",
        "not-a-number",
    ],
)
async def test_retry_after_attribute_sets_the_delay(
    mode: str, clock: ManualClock, error: Exception, expected: float
) -> None:
    """The delay is max(schedule, retry_after), clamped to the schedule's cap."""
    policy = Retry(
        on=(RateLimitedError, Throttled, BrokenHint),
        attempts=2,
        backoff=Backoff.constant(0.1, cap=5),
        clock=clock,
    )
    with pytest.raises(type(error)):
        await run(mode, policy, always(error))
    assert clock.sleeps == [expected]


async def test_retry_after_cannot_push_past_timeout(mode: str, clock: ManualClock) -> None:
    """A hint longer than the time left stops retrying at once."""
    policy = Retry(on=RateLimitedError, timeout=3, backoff=Backoff.constant(0.1), clock=clock)
    with pytest.raises(RateLimitedError) as info:
        await run(mode, policy, always(RateLimitedError("api", retry_after=5.0)))
    assert clock.sleeps == []
    assert "3s timeout" in info.value.__notes__[0]


def http_error(status: int, retry_after: str | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "https://api.example.test/items")
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    response = httpx.Response(status, headers=headers, request=request)
    return httpx.HTTPStatusError(f"{status}", request=request, response=response)


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (429, "3", 3.0),
        (503, "7", 7.0),
        (503, formatdate(WALL + 4, usegmt=True), 4.0),
        (429, formatdate(WALL - 60, usegmt=True), 0.5),  # a date in the past: no wait added
        (429, "soon", 0.5),
        (500, "3", 0.5),  # only 429 and 503 carry a meaningful Retry-After
        (429, None, 0.5),
    ],
)
async def test_httpx_status_error_retry_after_header(
    mode: str, clock: ManualClock, status: int, header: str | None, expected: float
) -> None:
    """An httpx 429/503 error's Retry-After (seconds or HTTP-date) sets the delay."""
    policy = Retry(on=httpx.HTTPStatusError, attempts=2, backoff=Backoff.constant(0.5), clock=clock)
    with pytest.raises(httpx.HTTPStatusError):
        await run(mode, policy, always(http_error(status, header)))
    assert clock.sleeps == [expected]


# -- Retry.http ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError(),
        TimeoutError(),
        ButtressTimeout("inner", 1.0),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        http_error(429),
        http_error(502),
        http_error(503),
        http_error(504),
    ],
    ids=repr,
)
async def test_http_preset_retries_transient_failures(
    mode: str, clock: ManualClock, error: BaseException
) -> None:
    """Retry.http retries connection errors, timeouts and 429/502/503/504 answers."""
    calls = []

    def fn() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return "ok"

    assert await run(mode, Retry.http(clock=clock), fn) == "ok"
    assert len(calls) == 2


@pytest.mark.parametrize("error", [http_error(404), http_error(500), ValueError()], ids=repr)
async def test_http_preset_does_not_retry_other_errors(
    mode: str, clock: ManualClock, error: BaseException
) -> None:
    """Client errors, 500 and non-HTTP errors are not retried by the preset."""
    fn = always(error, clock)
    with pytest.raises(type(error)):
        await run(mode, Retry.http(clock=clock), fn)
    assert len(fn.calls) == 1


async def test_http_preset_retries_responses_and_honours_retry_after(
    mode: str, clock: ManualClock
) -> None:
    """Returned 429/503 responses are retried after their Retry-After; the last is returned."""
    request = httpx.Request("GET", "https://api.example.test/")
    responses = iter(
        [
            httpx.Response(503, headers={"Retry-After": "2"}, request=request),
            httpx.Response(429, headers={"Retry-After": "1"}, request=request),
            httpx.Response(429, request=request),
        ]
    )
    policy = Retry.http(attempts=3, backoff=Backoff.constant(0.25), clock=clock)
    last = await run(mode, policy, lambda: next(responses))
    assert last.status_code == 429
    assert clock.sleeps == [2.0, 1.0]


async def test_http_preset_passes_good_responses(mode: str, clock: ManualClock) -> None:
    """A 200 or a 404 response is returned at once."""
    request = httpx.Request("GET", "https://api.example.test/")
    for status in (200, 404):
        response = httpx.Response(status, request=request)
        assert await run(mode, Retry.http(clock=clock), lambda r=response: r) is response
    assert clock.sleeps == []


def test_http_preset_describes_itself() -> None:
    """The preset's options render with readable predicate names and full jitter."""
    options = Retry.http(timeout=10, name="api").describe()["options"]
    assert options["on"] == "http_retryable_error"
    assert options["on_result"] == "http_retryable_response"
    assert options["backoff"]["jitter"] == "full"
    assert options["timeout"] == 10.0


# -- budget --------------------------------------------------------------------------------------


async def test_spent_budget_stops_retries_with_the_real_error(
    mode: str, clock: ManualClock
) -> None:
    """When the budget is spent the call fails with its own error and a note naming the budget."""
    budget = RetryBudget(ratio=0, min_per_second=0.1, ttl=10, name="api-budget", clock=clock)
    policy = Retry(on=ConnectionError, attempts=5, budget=budget, clock=clock)
    fn = always(ConnectionError("down"), clock)
    with RecordingListener() as events, pytest.raises(ConnectionError, match="down") as info:
        await run(mode, policy, fn)
    # No deposits (ratio 0); the reserve is 0.1/s * 10s = 1 retry.
    assert len(fn.calls) == 2
    assert info.value.__notes__ == [
        "retry 'retry': gave up after 2 attempts (retry budget 'api-budget' is spent)"
    ]
    assert events.of(RetryExhausted)[0].reason == "retry budget 'api-budget' is spent"


async def test_budget_is_shared_between_policies(mode: str, clock: ManualClock) -> None:
    """Two Retry policies given one budget draw from the same allowance."""
    budget = RetryBudget(ratio=1.0, min_per_second=0.2, ttl=10, clock=clock)
    first = Retry(on=ConnectionError, attempts=10, budget=budget, clock=clock)
    second = Retry(on=ConnectionError, attempts=10, budget=budget, clock=clock, name="second")
    with pytest.raises(ConnectionError):
        await run(mode, first, always(ConnectionError))
    assert first.retries == 3  # a reserve of 2 retries, plus 1 for the call's deposit
    with pytest.raises(ConnectionError):
        await run(mode, second, always(ConnectionError))
    assert second.retries == 1  # only the second call's own deposit is left
    stats = budget.snapshot()
    assert (stats.calls, stats.retries, stats.available) == (2, 4, 0)


async def test_budget_counts_first_attempts(mode: str, clock: ManualClock) -> None:
    """Every call through a Retry deposits once, successful or not; retries withdraw."""
    budget = RetryBudget(clock=clock)
    policy = Retry(on=ConnectionError, budget=budget, backoff=Backoff.constant(0), clock=clock)
    for _ in range(4):
        await run(mode, policy, lambda: "ok")
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError
        return "ok"

    await run(mode, policy, flaky)
    stats = budget.snapshot()
    assert (stats.calls, stats.retries) == (5, 1)
