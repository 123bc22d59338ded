"""Retry: attempts, rules, results, what is never retried, notes, events, decorators, options."""

from __future__ import annotations

import asyncio
import inspect
import math
import random
import threading
from typing import Any

import pytest

from buttress import CircuitOpenError, ConfigError, RateLimitedError
from buttress.events import RetryExhausted, RetryScheduled
from buttress.retry import Backoff, Retry, RetryableResult, RetryRule
from buttress.testing import ManualClock, RecordingListener
from tests.conftest import run


class Flaky:
    """Raises the given errors in turn, then returns ``result``."""

    def __init__(self, *errors: BaseException, result: object = "ok") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0
        self.raised: list[BaseException] = []

    def __call__(self, *args: Any) -> object:
        self.calls += 1
        if self.errors:
            error = self.errors.pop(0)
            self.raised.append(error)
            raise error
        return self.result


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def retry(clock: ManualClock, **options: Any) -> Retry:
    options.setdefault("on", ConnectionError)
    return Retry(clock=clock, **options)


async def test_success_on_first_attempt_does_nothing_else(mode: str, clock: ManualClock) -> None:
    """A first-attempt success returns the result, sleeps never and counts one attempt."""
    policy = retry(clock)
    assert await run(mode, policy, Flaky()) == "ok"
    assert clock.sleeps == []
    stats = policy.snapshot()
    assert (stats.calls, stats.attempts, stats.successes, stats.retries) == (1, 1, 1, 0)


async def test_retries_until_success_with_backoff(mode: str, clock: ManualClock) -> None:
    """Failures matched by ``on`` are retried after the backoff's successive delays."""
    policy = retry(clock, attempts=5)
    fn = Flaky(ConnectionError("a"), ConnectionError("b"))
    assert await run(mode, policy, fn) == "ok"
    assert fn.calls == 3
    assert clock.sleeps == [0.1, 0.2]
    stats = policy.snapshot()
    assert (stats.calls, stats.attempts, stats.retries, stats.successes) == (1, 3, 2, 1)


class CountingClock(ManualClock):
    """A ManualClock that counts how often it is read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def monotonic(self) -> float:
        self.reads += 1
        return super().monotonic()


async def test_first_attempt_success_reads_no_clock(mode: str) -> None:
    """The hot path reads the clock only when a timeout needs the start time."""
    clock = CountingClock()
    await run(mode, retry(clock), Flaky())
    assert clock.reads == 0
    await run(mode, retry(clock, timeout=5), Flaky())
    assert clock.reads == 1


async def test_arguments_are_passed_on_every_attempt(mode: str, clock: ManualClock) -> None:
    """Each attempt receives the same arguments."""
    seen: list[tuple[Any, ...]] = []

    def fn(*args: Any) -> str:
        seen.append(args)
        if len(seen) < 2:
            raise ConnectionError
        return "done"

    assert await run(mode, retry(clock), fn, 1, "two") == "done"
    assert seen == [(1, "two"), (1, "two")]


async def test_exhausted_reraises_last_error_with_note(mode: str, clock: ManualClock) -> None:
    """When attempts run out, the last real error is re-raised, unwrapped, with a PEP 678 note."""
    policy = retry(clock, attempts=3, name="db")
    fn = Flaky(ConnectionError("1"), ConnectionError("2"), ConnectionError("3"))
    with pytest.raises(ConnectionError) as info:
        await run(mode, policy, fn)
    assert info.value is fn.raised[-1]
    assert type(info.value) is ConnectionError
    assert info.value.__notes__ == ["retry 'db': gave up after 3 attempts (attempts exhausted)"]
    assert info.value.__context__ is None  # not chained to the earlier attempts' errors
    assert clock.sleeps == [0.1, 0.2]
    assert policy.snapshot().exhausted == 1


async def test_one_attempt_means_no_retry(mode: str, clock: ManualClock) -> None:
    """attempts=1 runs the call once and says so in the note."""
    fn = Flaky(ConnectionError())
    with pytest.raises(ConnectionError) as info:
        await run(mode, retry(clock, attempts=1), fn)
    assert fn.calls == 1
    assert info.value.__notes__ == ["retry 'retry': gave up after 1 attempt (attempts exhausted)"]


async def test_unmatched_error_propagates_at_once(mode: str, clock: ManualClock) -> None:
    """An error ``on`` does not match is raised as it is, without retry or note."""
    policy = retry(clock)
    fn = Flaky(ValueError("bad input"))
    with pytest.raises(ValueError, match="bad input") as info:
        await run(mode, policy, fn)
    assert fn.calls == 1
    assert not hasattr(info.value, "__notes__")
    assert policy.snapshot().failures == 1


async def test_unmatched_error_after_retries_gets_a_note(mode: str, clock: ManualClock) -> None:
    """An unmatched error that ends a retried call says how many attempts were made."""
    fn = Flaky(ConnectionError(), KeyError("k"))
    with pytest.raises(KeyError) as info:
        await run(mode, retry(clock), fn)
    assert info.value.__notes__ == ["retry 'retry': made 2 attempts; the last error is not retried"]


@pytest.mark.parametrize(
    "on",
    [(ConnectionError, TimeoutError), lambda exc: "retry" in str(exc)],
    ids=["tuple", "predicate"],
)
async def test_on_accepts_tuples_and_predicates(mode: str, clock: ManualClock, on: Any) -> None:
    """``on`` may be a tuple of types or a predicate on the exception."""
    fn = Flaky(TimeoutError("retry me"), ConnectionError("retry me too"))
    assert await run(mode, retry(clock, on=on, attempts=3), fn) == "ok"
    assert fn.calls == 3


async def test_zero_delay_never_sleeps(mode: str, clock: ManualClock) -> None:
    """A zero delay retries at once without calling sleep at all."""
    fn = Flaky(ConnectionError(), ConnectionError())
    assert await run(mode, retry(clock, backoff=Backoff.constant(0)), fn) == "ok"
    assert clock.sleeps == []


# -- what is never retried -----------------------------------------------------------------------


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(1), GeneratorExit()])
def test_base_exceptions_are_never_retried(clock: ManualClock, error: BaseException) -> None:
    """KeyboardInterrupt, SystemExit and GeneratorExit pass through, even a catch-all predicate."""
    policy = retry(clock, on=lambda exc: True)
    fn = Flaky(error)
    with pytest.raises(type(error)):
        policy.call(fn)
    assert fn.calls == 1
    assert policy.snapshot().retries == 0


async def test_cancelled_error_is_never_retried(clock: ManualClock) -> None:
    """asyncio.CancelledError raised by the call propagates at once."""
    policy = retry(clock, on=lambda exc: True)
    calls = 0

    async def fn() -> None:
        nonlocal calls
        calls += 1
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await policy.acall(fn)
    assert calls == 1


async def test_cancel_during_backoff_sleep_stops_retrying(clock: ManualClock) -> None:
    """Cancelling a task while it waits between attempts cancels it; nothing else is tried."""
    policy = retry(clock, attempts=5, backoff=Backoff.constant(1))
    calls = 0

    async def fn() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError

    task = asyncio.create_task(policy.acall(fn))
    await asyncio.sleep(0)  # the task fails once and waits in ManualClock.asleep
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == 1


@pytest.mark.parametrize("on", [KeyboardInterrupt, BaseException, (ConnectionError, SystemExit)])
def test_on_rejects_non_exception_types(on: Any) -> None:
    """``on`` naming BaseException-only types is a ConfigError: cancellation is never retried."""
    with pytest.raises(ConfigError, match=r"^on: must name Exception subclasses"):
        Retry(on=on)


async def test_circuit_open_is_not_retried_by_broad_types(mode: str, clock: ManualClock) -> None:
    """on=Exception does not retry CircuitOpenError: the breaker is protecting the dependency."""
    fn = Flaky(CircuitOpenError("db", retry_after=5.0))
    with pytest.raises(CircuitOpenError):
        await run(mode, retry(clock, on=Exception), fn)
    assert fn.calls == 1


@pytest.mark.parametrize(
    "on", [CircuitOpenError, (Exception, CircuitOpenError), lambda exc: True], ids=repr
)
async def test_circuit_open_is_retried_when_named(mode: str, clock: ManualClock, on: Any) -> None:
    """CircuitOpenError is retried when ``on`` names it, or when a predicate accepts it."""
    fn = Flaky(CircuitOpenError("db"))
    assert await run(mode, retry(clock, on=on), fn) == "ok"
    assert fn.calls == 2


async def test_circuit_open_subclass_named_only_matches_itself(
    mode: str, clock: ManualClock
) -> None:
    """Naming a CircuitOpenError subclass retries that subclass, not every open circuit."""

    class PaymentsOpen(CircuitOpenError):
        pass

    policy = retry(clock, on=(Exception, PaymentsOpen))
    assert await run(mode, policy, Flaky(PaymentsOpen("payments"))) == "ok"
    with pytest.raises(CircuitOpenError):
        await run(mode, policy, Flaky(CircuitOpenError("other")))


# -- rules ---------------------------------------------------------------------------------------


def rules_retry(clock: ManualClock) -> Retry:
    return retry(
        clock,
        attempts=2,
        backoff=Backoff.exponential(base=0.1),
        on=[
            RetryRule(RateLimitedError, attempts=5, backoff=Backoff.constant(2)),
            RetryRule(ConnectionError),
        ],
    )


async def test_rules_give_each_error_its_own_schedule(mode: str, clock: ManualClock) -> None:
    """A rate-limit rule waits its own delays and tries more than the default rule allows."""
    fn = Flaky(*(RateLimitedError("api") for _ in range(4)))
    assert await run(mode, rules_retry(clock), fn) == "ok"
    assert clock.sleeps == [2, 2, 2, 2]


async def test_rules_count_failures_per_rule(mode: str, clock: ManualClock) -> None:
    """Each rule counts its own failures; the k-th failure of a rule waits its k-th delay."""
    fn = Flaky(ConnectionError("1"), RateLimitedError("api"), ConnectionError("2"))
    with pytest.raises(ConnectionError, match="2") as info:
        await run(mode, rules_retry(clock), fn)
    # ConnectionError's rule has attempts=2 (the default): its second failure ends the call.
    assert clock.sleeps == [0.1, 2]
    assert info.value.__notes__ == ["retry 'retry': gave up after 3 attempts (attempts exhausted)"]


async def test_rate_limit_rule_stops_at_its_own_limit(mode: str, clock: ManualClock) -> None:
    """A rule's attempts caps how many attempts may end in its error."""
    fn = Flaky(*(RateLimitedError("api") for _ in range(9)))
    with pytest.raises(RateLimitedError):
        await run(mode, rules_retry(clock), fn)
    assert fn.calls == 5


async def test_first_matching_rule_wins(mode: str, clock: ManualClock) -> None:
    """Rules are tried in order: a ConnectionRefusedError matches ConnectionError before OSError."""
    policy = retry(
        clock,
        on=[RetryRule(ConnectionError, attempts=2), RetryRule(OSError, attempts=4)],
        backoff=Backoff.constant(0),
    )
    fn = Flaky(*(ConnectionRefusedError() for _ in range(5)))
    with pytest.raises(ConnectionRefusedError):
        await run(mode, policy, fn)
    assert fn.calls == 2
    other = Flaky(*(FileNotFoundError() for _ in range(5)))
    with pytest.raises(FileNotFoundError):
        await run(mode, policy, other)
    assert other.calls == 4


async def test_unmatched_by_any_rule_is_not_retried(mode: str, clock: ManualClock) -> None:
    """An error that matches no rule propagates at once."""
    fn = Flaky(ValueError())
    with pytest.raises(ValueError):
        await run(mode, rules_retry(clock), fn)
    assert fn.calls == 1


def test_rule_validation_names_the_field() -> None:
    """RetryRule options are validated at construction with the field in the message."""
    with pytest.raises(ConfigError, match=r"^RetryRule\.attempts: must be an integer >= 1"):
        RetryRule(ConnectionError, attempts=0)
    with pytest.raises(ConfigError, match=r"^RetryRule\.backoff"):
        RetryRule(ConnectionError, backoff=0.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^RetryRule\.on"):
        RetryRule(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^RetryRule\.on"):
        RetryRule([ConnectionError])  # type: ignore[arg-type]


# -- results -------------------------------------------------------------------------------------


async def test_on_result_retries_rejected_results(mode: str, clock: ManualClock) -> None:
    """Results marked by on_result are retried like failures."""
    results = iter([None, None, "value"])
    policy = retry(clock, on_result=lambda result: result is None)
    assert await run(mode, policy, lambda: next(results)) == "value"
    assert clock.sleeps == [0.1, 0.2]


async def test_on_result_returns_last_result_when_exhausted(mode: str, clock: ManualClock) -> None:
    """When attempts run out on a rejected result, that result is returned, never wrapped."""
    results = iter(["busy-1", "busy-2", "busy-3"])
    policy = retry(clock, on_result=lambda result: result.startswith("busy"))
    assert await run(mode, policy, lambda: next(results)) == "busy-3"
    stats = policy.snapshot()
    assert (stats.calls, stats.attempts, stats.exhausted, stats.successes) == (1, 3, 1, 0)


async def test_errors_and_results_mix(mode: str, clock: ManualClock) -> None:
    """A call may fail with an error, then a rejected result, then succeed."""
    outcomes: list[Any] = [ConnectionError(), "retry", "fine"]

    def fn() -> Any:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    policy = retry(clock, attempts=3, on_result=lambda r: r == "retry")
    assert await run(mode, policy, fn) == "fine"


# -- events --------------------------------------------------------------------------------------


async def test_each_retry_and_giving_up_emit_events(mode: str, clock: ManualClock) -> None:
    """RetryScheduled carries attempt, delay and error; RetryExhausted says why it stopped."""
    fn = Flaky(ConnectionError("1"), ConnectionError("2"), ConnectionError("3"))
    with RecordingListener() as events, pytest.raises(ConnectionError):
        await run(mode, retry(clock, name="api"), fn)
    scheduled = events.of(RetryScheduled)
    assert [(e.source, e.attempt, e.delay) for e in scheduled] == [("api", 1, 0.1), ("api", 2, 0.2)]
    assert [e.error for e in scheduled] == fn.raised[:2]
    assert scheduled[0].time == 1_700_000_000.0  # ManualClock's wall time when attempt 1 failed
    (exhausted,) = events.of(RetryExhausted)
    assert (exhausted.attempts, exhausted.reason, exhausted.error) == (
        3,
        "attempts exhausted",
        fn.raised[-1],
    )


async def test_rejected_results_appear_as_retryable_result(mode: str, clock: ManualClock) -> None:
    """A retried result is reported as a RetryableResult error; giving up carries no error."""
    policy = retry(clock, attempts=2, on_result=lambda r: r == 503)
    with RecordingListener() as events:
        assert await run(mode, policy, lambda: 503) == 503
    (scheduled,) = events.of(RetryScheduled)
    assert isinstance(scheduled.error, RetryableResult)
    assert scheduled.error.result == 503
    assert events.of(RetryExhausted)[0].error is None


async def test_no_event_is_built_when_nobody_listens(
    mode: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no listener wanting the level, no event object is built or emitted."""
    import buttress.retry._core as core

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("event built")

    monkeypatch.setattr(core, "wants", lambda level: False)
    monkeypatch.setattr(core, "RetryScheduled", fail)
    monkeypatch.setattr(core, "RetryExhausted", fail)
    with pytest.raises(ConnectionError):
        await run(mode, retry(clock), Flaky(*(ConnectionError() for _ in range(3))))


# -- decorators ----------------------------------------------------------------------------------


def test_decorates_sync_functions_and_methods(clock: ManualClock) -> None:
    """@retry keeps the function's name and signature and works on methods."""
    policy = retry(clock)

    class Client:
        def __init__(self) -> None:
            self.flaky = Flaky(ConnectionError())

        @policy
        def get(self, key: str, *, default: int = 0) -> str:
            """Fetch a key."""
            self.flaky()
            return f"{key}={default}"

    client = Client()
    assert client.get("a", default=3) == "a=3"
    assert client.flaky.calls == 2
    assert Client.get.__name__ == "get"
    assert Client.get.__doc__ == "Fetch a key."
    assert list(inspect.signature(Client.get).parameters) == ["self", "key", "default"]


async def test_decorates_async_functions(clock: ManualClock) -> None:
    """@retry on a coroutine function gives a coroutine function that retries with asleep."""
    policy = retry(clock)
    flaky = Flaky(ConnectionError(), ConnectionError())

    @policy
    async def fetch(x: int) -> int:
        flaky()
        return x * 2

    assert inspect.iscoroutinefunction(fetch)
    assert await fetch(21) == 42
    assert clock.sleeps == [0.1, 0.2]
    assert policy.snapshot().successes == 1


async def test_decorated_async_exhausts_with_note(clock: ManualClock) -> None:
    """The async decorator re-raises the last error with its note, like acall."""

    @retry(clock, attempts=2)
    async def fetch() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError) as info:
        await fetch()
    assert info.value.__notes__ == ["retry 'retry': gave up after 2 attempts (attempts exhausted)"]


def test_concurrent_threads_keep_separate_call_state(clock: ManualClock) -> None:
    """Calls from many threads through one Retry each see their own attempts."""
    policy = retry(clock, attempts=3, backoff=Backoff.constant(0))
    results: list[str] = []

    def worker(n: int) -> None:
        for i in range(100):
            fn = Flaky(ConnectionError(), result=f"{n}-{i}")
            results.append(str(policy.call(fn)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted(f"{n}-{i}" for n in range(8) for i in range(100))


async def test_concurrent_tasks_keep_separate_call_state(clock: ManualClock) -> None:
    """Tasks interleaving their backoff sleeps do not share attempts or schedules."""
    policy = retry(clock, attempts=3)

    async def job(n: int) -> int:
        flaky = Flaky(*(ConnectionError() for _ in range(n % 3)), result=n)

        async def fn() -> Any:
            return flaky()

        return await policy.acall(fn)

    assert await asyncio.gather(*(job(n) for n in range(30))) == list(range(30))


# -- options -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": 2.5}, "attempts"),
        ({"backoff": 0.1}, "backoff"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"on": []}, "on"),
        ({"on": ()}, "on"),
        ({"on": [ConnectionError]}, "on"),
        ({"on": 42}, "on"),
        ({"on_result": "yes"}, "on_result"),
        ({"budget": 10}, "budget"),
        ({"name": ""}, "name"),
        ({"clock": object()}, "clock"),
        ({"rng": 7}, "rng"),
    ],
)
def test_bad_options_raise_config_error(options: dict[str, Any], field: str) -> None:
    """Each invalid option raises ConfigError naming its field and value."""
    options.setdefault("on", ConnectionError)
    with pytest.raises(ConfigError) as info:
        Retry(**options)
    assert info.value.field == field
    assert repr(info.value.value) in str(info.value)


def test_on_is_required() -> None:
    """There is no default for what to retry: Retry() without ``on`` is a TypeError."""
    with pytest.raises(TypeError):
        Retry()  # type: ignore[call-arg]


def test_describe_renders_options(clock: ManualClock) -> None:
    """describe() gives the policy, name and options as plain data, rules included."""
    policy = Retry(
        on=[RetryRule(RateLimitedError, attempts=5, backoff=Backoff.constant(1))],
        timeout=5,
        name="api",
        clock=clock,
        rng=random.Random(1),
    )
    data = policy.describe()
    assert data["policy"] == "Retry"
    assert data["name"] == "api"
    options = data["options"]
    assert options["on"] == [
        {
            "on": "RateLimitedError",
            "attempts": 5,
            "backoff": {"kind": "constant", "delay": 1.0, "cap": 10.0, "jitter": "none"},
        }
    ]
    assert options["attempts"] == 3
    assert options["timeout"] == 5.0
    assert options["backoff"]["kind"] == "exponential"
    assert repr(policy) == "Retry('api')"


def test_counters_are_readable_as_attributes(clock: ManualClock) -> None:
    """calls, attempts, retries, successes and exhausted are plain ints on the policy."""
    policy = retry(clock, attempts=2)
    policy.call(Flaky())
    policy.call(Flaky(ConnectionError()))
    with pytest.raises(ConnectionError):
        policy.call(Flaky(ConnectionError(), ConnectionError()))
    with pytest.raises(ValueError):
        policy.call(Flaky(ValueError()))
    assert (policy.calls, policy.attempts, policy.retries) == (4, 6, 2)
    assert (policy.successes, policy.exhausted) == (2, 1)
    assert policy.snapshot().failures == 1
