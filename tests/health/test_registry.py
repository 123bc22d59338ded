"""HealthRegistry: declaring checks, parallel runs, timeouts, errors, caching and overall status."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import buttress
from buttress.errors import ConfigError
from buttress.health import Check, CheckResult, HealthRegistry, Status
from buttress.testing import ManualClock

DSN = "postgresql://app:s3cret-pw@db.internal:5432/orders"


@pytest.fixture
def clock() -> ManualClock:
    """A virtual clock for ages, TTLs and timeouts."""
    return ManualClock()


@pytest.fixture
def registry(clock: ManualClock) -> HealthRegistry:
    """A registry on the virtual clock."""
    return HealthRegistry(clock=clock)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event that hung sync checks wait on; set at the end of the test to free their threads."""
    event = threading.Event()
    yield event
    event.set()


class Counter:
    """A check that counts its calls and returns ``value`` (a status or anything a check may)."""

    def __init__(self, value: Any = True) -> None:
        self.calls = 0
        self.value = value

    def __call__(self) -> Any:
        self.calls += 1
        return self.value


# -- declaring checks ---------------------------------------------------------------------------


def test_add_callable_check_object_and_decorators(registry: HealthRegistry) -> None:
    """Checks come from callables, Check objects and both decorator forms, in order."""

    def db() -> bool:
        return True

    added = registry.add(db, component_type="datastore", critical=False, timeout=2, ttl=0)
    assert (added.name, added.component_type, added.critical, added.timeout, added.ttl) == (
        "db",
        "datastore",
        False,
        2.0,
        0.0,
    )
    registry.add(Check("cache", db), measurement="latency", groups=["readiness", "startup"])

    @registry.check
    def disk() -> bool:
        return True

    @registry.check(name="queue", groups="startup")
    async def queue_check() -> bool:
        return True

    assert disk() is True  # the decorator returns the function unchanged
    names = ["process", "event_loop", "db", "cache", "disk", "queue"]
    assert [c.name for c in registry.checks()] == names
    assert [c.name for c in registry.checks("startup")] == ["cache", "queue"]
    assert registry.checks("readiness")[1].key == "cache:latency"
    assert registry.checks("liveness")[0].name == "process"
    assert registry.remove("db").name == "db"
    assert "db" not in registry
    assert len(registry) == 5


def test_duplicate_and_missing_names_are_config_errors(registry: HealthRegistry) -> None:
    """Duplicate names, unnamed lambdas and bad fields raise ConfigError; unknown names KeyError."""
    registry.add(lambda: True, name="db")
    with pytest.raises(ConfigError, match="already a registered health check"):
        registry.add(Check("db", lambda: True))
    with pytest.raises(ConfigError, match="name"):
        registry.add(lambda: True)
    with pytest.raises(ConfigError, match="timeout"):
        registry.add(lambda: True, name="x", timeout=0)
    with pytest.raises(KeyError):
        registry.remove("nope")


def test_liveness_admits_only_system_checks(registry: HealthRegistry) -> None:
    """A dependency check in the liveness group is refused; a system check is accepted."""
    with pytest.raises(ConfigError, match="liveness"):
        registry.add(lambda: True, name="db", component_type="datastore", groups="liveness")
    with pytest.raises(ConfigError, match="liveness"):
        registry.add(Check("api", lambda: True, groups=frozenset({"liveness", "readiness"})))
    registry.add(lambda: True, name="loop", component_type="system", groups=["liveness"])
    assert [c.name for c in registry.checks("liveness")] == ["process", "event_loop", "loop"]


async def test_process_check_reports_uptime(registry: HealthRegistry, clock: ManualClock) -> None:
    """The built-in process check passes with the registry's uptime in seconds."""
    clock.advance(12.5)
    report = await registry.run("liveness")
    outcome = report.checks["process"]
    assert (outcome.status, outcome.result.observed_value, outcome.result.observed_unit) == (
        Status.PASS,
        12.5,
        "s",
    )
    assert outcome.check.component_type == "system"


# -- running: parallelism, timeouts, errors -----------------------------------------------------


async def test_checks_run_in_parallel() -> None:
    """Async checks and sync checks (in threads) overlap: each waits until all have started."""
    registry = HealthRegistry()
    barrier = threading.Barrier(3, timeout=2)
    started = asyncio.Event()
    count = 0

    def sync_check() -> bool:
        barrier.wait()  # breaks (and fails the check) unless all three threads run at once
        return True

    async def async_check() -> bool:
        nonlocal count
        count += 1
        if count == 2:
            started.set()
        await asyncio.wait_for(started.wait(), 2)
        return True

    for index in range(3):
        registry.add(sync_check, name=f"sync{index}")
    for index in range(2):
        registry.add(async_check, name=f"async{index}")
    report = await registry.run("readiness")
    assert report.status is Status.PASS, report.summary()


async def test_hung_checks_fail_at_timeout_without_delaying_others(
    release: threading.Event,
) -> None:
    """A hung sync and a hung async check fail at their timeouts; the fast one passes at once."""
    registry = HealthRegistry()
    cancelled = threading.Event()

    async def hung_async() -> bool:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return True

    registry.add(release.wait, name="hung_sync", timeout=0.05)
    registry.add(hung_async, name="hung_async", timeout=0.05)
    registry.add(lambda: True, name="fast", timeout=1)
    report = await registry.run()
    assert not release.is_set()  # the run came back while the sync check is still blocked
    assert report.status is Status.FAIL
    for name in ("hung_sync", "hung_async"):
        assert report.checks[name].result.output == "timed out after 0.05s"
    assert report.checks["fast"].status is Status.PASS
    await asyncio.sleep(0)
    assert cancelled.is_set()  # the hung task was cancelled, not left running


async def test_timeout_runs_on_the_injected_clock(
    registry: HealthRegistry, clock: ManualClock
) -> None:
    """With ManualClock, a hung check fails when virtual time passes its timeout."""

    async def hung() -> bool:
        await asyncio.Event().wait()
        return True

    registry.add(hung, name="hung", timeout=3)
    running = asyncio.ensure_future(registry.run("readiness"))
    await asyncio.sleep(0)
    clock.advance(2.9)
    await asyncio.sleep(0)
    assert not running.done()
    clock.advance(0.1)
    report = await asyncio.wait_for(running, 1)
    assert report.checks["hung"].result.output == "timed out after 3s"
    assert report.checks["hung"].result.duration == pytest.approx(3.0)


async def test_hung_sync_check_holds_one_thread(release: threading.Event) -> None:
    """A sync check still hung from an earlier run fails at once instead of taking a new thread."""
    registry = HealthRegistry()
    registry.add(release.wait, name="hung", timeout=0.05, ttl=0)
    await registry.run("readiness")
    threads = threading.active_count()
    report = await asyncio.wait_for(registry.run("readiness"), 0.04)
    assert report.checks["hung"].result.output.startswith("still hung")
    assert threading.active_count() == threads
    release.set()
    for _ in range(100):
        if threading.active_count() < threads:
            break
        await asyncio.sleep(0.005)
    assert (await registry.run("readiness")).status is Status.PASS


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_exception_fails_with_redacted_message(registry: HealthRegistry, kind: str) -> None:
    """A check that raises fails with 'ErrorType: message', the DSN's password masked."""

    def boom() -> bool:
        raise ConnectionError(f"could not connect to {DSN}")

    async def aboom() -> bool:
        return boom()

    registry.add(boom if kind == "sync" else aboom, name="db")
    report = await registry.run("readiness")
    output = report.checks["db"].result.output
    assert (
        output
        == "ConnectionError: could not connect to postgresql://app:***@db.internal:5432/orders"
    )
    assert "s3cret" not in str(report.to_dict())


async def test_return_values_are_normalised(registry: HealthRegistry) -> None:
    """Bools, words, dicts and CheckResults become results; anything else fails the check."""
    registry.add(lambda: False, name="bool")
    registry.add(lambda: "degraded", name="word")
    registry.add(lambda: {"status": "healthy", "value": 3, "unit": "ms"}, name="dict")
    registry.add(lambda: CheckResult.warned("slow", observed_value=900), name="result")
    registry.add(lambda: 42, name="bad")
    checks = (await registry.run("readiness")).checks
    assert checks["bool"].status is Status.FAIL
    assert checks["word"].status is Status.WARN
    assert (checks["dict"].result.observed_value, checks["dict"].result.observed_unit) == (3, "ms")
    assert checks["result"].result.output == "slow"
    assert checks["bad"].result.output == "TypeError: a health check returned int, not a result"
    assert all(outcome.result.time == 1_700_000_000.0 for outcome in checks.values())


async def test_sync_callable_returning_a_coroutine_is_awaited(registry: HealthRegistry) -> None:
    """A plain lambda wrapping an async function still works."""

    async def ping() -> str:
        return "warn"

    registry.add(lambda: ping(), name="wrapped")
    assert (await registry.run("readiness")).checks["wrapped"].status is Status.WARN


async def test_check_sees_its_deadline(registry: HealthRegistry) -> None:
    """Inside a check, buttress.remaining() is the time left before its timeout."""
    seen: list[float | None] = []
    registry.add(lambda: seen.append(buttress.remaining()), name="sync", timeout=4)

    async def acheck() -> None:
        seen.append(buttress.remaining())

    registry.add(acheck, name="async", timeout=2)
    await registry.run("readiness")
    assert sorted(seen) == [2.0, 4.0]  # type: ignore[type-var]


async def test_check_raising_cancelled_error_fails(registry: HealthRegistry) -> None:
    """A check that raises CancelledError by itself fails; the caller is not cancelled."""

    async def rogue() -> bool:
        raise asyncio.CancelledError

    registry.add(rogue, name="rogue")
    report = await registry.run("readiness")
    assert report.checks["rogue"].result.output == "CancelledError: the check cancelled itself"


async def test_cancelling_one_probe_leaves_the_shared_run_going(registry: HealthRegistry) -> None:
    """A probe cancelled while waiting does not cancel the run another probe waits for."""
    gate = asyncio.Event()

    async def slow() -> bool:
        await gate.wait()
        return True

    registry.add(slow, name="db")
    first = asyncio.ensure_future(registry.run("readiness"))
    second = asyncio.ensure_future(registry.run("readiness"))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert (await asyncio.wait_for(second, 1)).status is Status.PASS
    assert first.cancelled()


def test_unknown_group_is_a_config_error(registry: HealthRegistry) -> None:
    """A misspelt group raises instead of reporting an empty, passing group."""
    with pytest.raises(ConfigError, match="group"):
        registry.checks("readyness")
    with pytest.raises(ConfigError, match="group"):
        registry.run_sync("readyness")


# -- caching --------------------------------------------------------------------------------------


async def test_fresh_results_are_served_from_cache(
    registry: HealthRegistry, clock: ManualClock
) -> None:
    """Within its ttl a check is not run again; the report gives the result's age."""
    counter = Counter()
    registry.add(counter, name="db", ttl=10)
    await registry.run("readiness")
    clock.advance(7)
    outcome = (await registry.run("readiness")).checks["db"]
    assert counter.calls == 1
    assert (outcome.age, outcome.stale) == (7.0, False)
    await registry.run("readiness", fresh=True)
    assert counter.calls == 2


async def test_cached_evaluation_creates_no_task(registry: HealthRegistry) -> None:
    """Evaluating fresh cached results starts no task and no thread."""
    for index in range(5):
        registry.add(Counter(), name=f"c{index}")
    await registry.run("readiness")
    loop = asyncio.get_running_loop()
    created: list[object] = []
    loop.set_task_factory(
        lambda lp, coro, **kw: created.append(coro) or asyncio.Task(coro, loop=lp)
    )
    try:
        threads = threading.active_count()
        report = await registry.run("readiness")
    finally:
        loop.set_task_factory(None)
    assert (created, threading.active_count(), report.status) == ([], threads, Status.PASS)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_stale_result_is_served_at_once_and_refreshed_once(
    registry: HealthRegistry, clock: ManualClock, kind: str
) -> None:
    """Past its ttl the old result comes back at once with its age; one refresh runs behind it."""
    gate = threading.Event()
    calls = 0

    def sync_check() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls > 1:
            gate.wait(2)
        return {"status": "pass", "value": calls}

    async def async_check() -> dict[str, Any]:
        return await asyncio.to_thread(sync_check)

    registry.add(sync_check if kind == "sync" else async_check, name="db", ttl=10)
    await registry.run("readiness")
    clock.advance(15)
    for _ in range(3):  # probes while the refresh is still running
        outcome = (await asyncio.wait_for(registry.run("readiness"), 1)).checks["db"]
        assert (outcome.result.observed_value, outcome.age, outcome.stale) == (1, 15.0, True)
    gate.set()
    for _ in range(200):
        outcome = (await registry.run("readiness")).checks["db"]
        if not outcome.stale:
            break
        await asyncio.sleep(0.005)
    assert (outcome.result.observed_value, outcome.age, outcome.stale) == (2, 0.0, False)
    assert calls == 2


async def test_wait_false_reports_unknown_and_runs_in_background(
    registry: HealthRegistry,
) -> None:
    """A check never run is UNKNOWN (overall warn) with wait=False, and starts meanwhile."""
    counter = Counter()

    async def acheck() -> bool:
        return bool(counter())

    registry.add(acheck, name="db")
    report = await registry.run("readiness", wait=False)
    outcome = report.checks["db"]
    assert (report.status, outcome.status, outcome.age, outcome.result.output) == (
        Status.WARN,
        Status.UNKNOWN,
        None,
        "not run yet",
    )
    for _ in range(3):  # the task runs, then its result is recorded
        await asyncio.sleep(0)
    assert counter.calls == 1
    assert (await registry.run("readiness", wait=False)).status is Status.PASS
    assert counter.calls == 1


async def test_a_run_joins_the_refresh_in_flight(registry: HealthRegistry) -> None:
    """Concurrent runs of a check never run yet share one execution."""
    counter = Counter()

    async def slow() -> bool:
        counter()
        await asyncio.sleep(0.01)
        return True

    registry.add(slow, name="db")
    reports = await asyncio.gather(*(registry.run("readiness") for _ in range(5)))
    assert counter.calls == 1
    assert all(report.status is Status.PASS for report in reports)


async def test_ttl_zero_always_runs_now(registry: HealthRegistry) -> None:
    """A check with ttl=0 is never cached; with wait=False its last result is served stale."""
    counter = Counter()
    registry.add(counter, name="db", ttl=0)
    for _ in range(3):
        assert (await registry.run("readiness")).checks["db"].stale is False
    assert counter.calls == 3
    assert (await registry.run("readiness", wait=False)).checks["db"].stale is True
    for _ in range(200):
        if counter.calls == 4:
            break
        await asyncio.sleep(0.001)
    assert counter.calls == 4


# -- overall status -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("critical", "other", "expected"),
    [
        ([], [], Status.PASS),
        (["pass"], ["fail"], Status.WARN),
        (["pass", "warn"], [], Status.WARN),
        (["warn", "fail"], ["pass"], Status.FAIL),
        ([], ["fail", "warn"], Status.WARN),
        (["pass"], ["pass"], Status.PASS),
    ],
)
async def test_overall_status_rules(
    registry: HealthRegistry, critical: list[str], other: list[str], expected: Status
) -> None:
    """Worst of the critical checks; a non-critical warn or fail gives at most warn."""
    for index, status in enumerate(critical):
        registry.add(Counter(status), name=f"crit{index}")
    for index, status in enumerate(other):
        registry.add(Counter(status), name=f"other{index}", critical=False)
    assert (await registry.run("readiness")).status is expected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["pass", "warn", "fail"]), st.booleans()), max_size=6))
def test_overall_status_property(checks: list[tuple[str, bool]]) -> None:
    """Over any mix, the overall status is max(critical severities, min(1, other severities))."""
    registry = HealthRegistry(clock=ManualClock())
    for index, (status, critical) in enumerate(checks):
        registry.add(Counter(status), name=f"c{index}", critical=critical)
    severities = [
        Status(status).severity if critical else min(1, Status(status).severity)
        for status, critical in checks
    ]
    expected = [Status.PASS, Status.WARN, Status.FAIL][max(severities, default=0)]
    assert registry.run_sync("readiness").status is expected


async def test_unknown_counts_as_warn(registry: HealthRegistry) -> None:
    """A critical check not run yet makes the overall status warn, never fail or pass."""
    registry.add(Counter("pass"), name="a")
    registry.add(Counter("fail"), name="b", critical=False)
    assert (await registry.run("readiness", wait=False)).status is Status.WARN


# -- sync callers ---------------------------------------------------------------------------------


def test_run_sync_from_sync_code(release: threading.Event) -> None:
    """run_sync runs the checks in a new loop and returns despite a hung sync check."""
    registry = HealthRegistry()
    registry.add(Counter("warn"), name="a")
    registry.add(release.wait, name="hung", timeout=0.05)
    report = registry.run_sync()
    assert report.status is Status.FAIL
    assert report.checks["a"].status is Status.WARN


def test_run_sync_refreshes_stale_results_before_returning(clock: ManualClock) -> None:
    """Without a loop that outlives the call, run_sync runs stale checks instead of serving them."""
    registry = HealthRegistry(clock=clock)
    counter = Counter()
    registry.add(counter, name="a", ttl=5)
    registry.run_sync("readiness")
    clock.advance(6)
    outcome = registry.run_sync("readiness").checks["a"]
    assert (counter.calls, outcome.stale, outcome.age) == (2, False, 0.0)
    assert registry.run_sync("readiness", wait=False).checks["a"].status is Status.PASS


async def test_run_sync_inside_a_running_loop_raises(registry: HealthRegistry) -> None:
    """Calling run_sync from async code is a clear error, not a deadlock."""
    with pytest.raises(RuntimeError, match=r"await registry\.run"):
        registry.run_sync()


async def test_liveness_runs_process_and_event_loop_lag_only() -> None:
    """A new registry's liveness holds the process and event-loop checks; a same-named check
    replaces the built-in one."""
    registry = HealthRegistry()
    registry.add(lambda: False, name="db", component_type="datastore")
    report = await registry.run("liveness")
    assert sorted(report.checks) == ["event_loop", "process"]
    assert report.checks["event_loop"].result.observed_unit == "ms"
    registry.add(lambda: True, name="event_loop", component_type="system", groups="liveness")
    assert len(registry.checks("liveness")) == 2


async def test_fresh_until_says_how_long_the_cached_results_hold() -> None:
    """Before a first result there is no horizon; after it, the earliest expiry; the
    generation changes with every result and every added or removed check."""
    clock = ManualClock(start=50.0)
    registry = HealthRegistry(clock=clock)
    for check in registry.checks():
        registry.remove(check.name)
    registry.add(lambda: True, name="a", ttl=10.0)
    registry.add(lambda: True, name="b", ttl=4.0)
    generation, until = registry.fresh_until("readiness")
    assert until == float("-inf")
    await registry.run("readiness")
    after_run, until = registry.fresh_until("readiness")
    assert after_run > generation
    assert until == 54.0
    registry.add(lambda: True, name="c", ttl=0)
    assert registry.fresh_until("readiness") == (after_run + 1, float("-inf"))
    registry.remove("c")
    assert registry.generation == after_run + 2
