"""The breakers check, custom callables, and commands."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from buttress.errors import ConfigError
from buttress.health import CheckResult, Status
from buttress.health.checks import breakers_check, command_check, custom_check
from buttress.registry import Registry
from buttress.testing import ManualClock
from tests import servers

from .conftest import Runner

PY = sys.executable
SECRET = "pw-never-shown-42"


def _fail_once(registry: Registry, name: str) -> None:
    breaker = registry.breaker(name, consecutive_failures=1, open_for=10)
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)


# -- circuit breakers ---------------------------------------------------------------------------


async def test_breakers_all_closed_pass(run: Runner):
    """Closed breakers pass; observed value 0; each is described in details."""
    registry = Registry(clock=ManualClock())
    registry.breaker("payments")
    registry.breaker("search")
    check = breakers_check(registry)
    result = await run(check)
    assert result.status is Status.PASS
    assert (result.observed_value, result.observed_unit) == (0, "breakers")
    assert result.details["breakers"]["payments"]["state"] == "closed"
    assert set(result.details["breakers"]) == {"payments", "search"}
    assert check.key == "circuit_breakers:open"


async def test_breakers_none_registered_pass(run: Runner):
    """A registry without breakers passes."""
    result = await run(breakers_check(Registry()))
    assert result.status is Status.PASS
    assert result.observed_value == 0


async def test_open_breakers_warn_never_fail(run: Runner):
    """Open, forced-open and half-open breakers give warn (never fail), counted and described."""
    clock = ManualClock()
    registry = Registry(clock=clock)
    _fail_once(registry, "payments")  # opens
    registry.breaker("search").trip()  # forced open
    _fail_once(registry, "ledger")
    registry.breaker("ok")
    check = breakers_check(registry)
    opened = await run(check)
    clock.advance(11)  # payments and ledger become half-open
    half = await run(check)
    assert opened.status is Status.WARN
    assert opened.observed_value == 3
    assert "3 of 4 circuit breakers open" in opened.output
    assert "payments (open)" in opened.output
    assert "search (forced_open)" in opened.output
    details = opened.details["breakers"]["payments"]
    assert details["failure_rate"] == 1.0
    assert details["retry_after"] == pytest.approx(10)
    assert half.status is Status.WARN
    assert half.observed_value == 3
    assert half.details["breakers"]["ledger"]["state"] == "half_open"


async def test_breaker_in_local_mode_warns_with_the_reason(run: Runner):
    """A shared breaker whose Redis is unreachable warns as degraded, with a reason, no secret."""
    from buttress.fleet import SharedCircuitBreaker
    from buttress.stores import RedisStore

    registry = Registry(clock=ManualClock())
    registry.breaker("search")
    url = f"redis://:{SECRET}@127.0.0.1:{servers.stopped_port()}/0"
    with RedisStore(url, timeout=0.2) as store:
        breaker = registry.breaker("payments", shared=store)
        assert isinstance(breaker, SharedCircuitBreaker)
        try:
            result = await run(breakers_check(registry))
        finally:
            breaker.close()
    assert result.status is Status.WARN
    assert result.observed_value == 0  # nothing is open: the warning is the local mode
    assert "1 in local mode" in result.output
    assert "payments (" in result.output
    details = result.details["breakers"]
    assert details["payments"]["degraded"] is True
    assert "redis://" in details["payments"]["degraded_reason"]
    assert details["search"]["degraded"] is False
    assert SECRET not in result.output
    assert SECRET not in repr(result.details)


def test_breakers_check_needs_a_registry():
    """Something that is not a Registry raises ConfigError on registry."""
    with pytest.raises(ConfigError) as info:
        breakers_check(object())  # type: ignore[arg-type]
    assert info.value.field == "registry"


# -- custom -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (True, Status.PASS),
        (False, Status.FAIL),
        ("healthy", Status.PASS),
        ("degraded", Status.WARN),
        ("down", Status.FAIL),
        (None, Status.PASS),
        (Status.WARN, Status.WARN),
    ],
)
async def test_custom_normalises_plain_values(run: Runner, value, status):
    """Bools, status words, Status and None become results."""
    result = await run(custom_check("mine", lambda: value))
    assert result.status is status


async def test_custom_dict_and_check_result(run: Runner):
    """A dict gives status, value, unit and message; a CheckResult passes through."""
    given = CheckResult.warned("slow queue", observed_value=9)
    from_dict = await run(
        custom_check(
            "queue",
            lambda: {"status": "healthy", "value": 3, "unit": "jobs", "message": "ok", "lag": 1},
        )
    )
    passed_through = await run(custom_check("queue", lambda: given))
    assert (from_dict.status, from_dict.observed_value, from_dict.observed_unit) == (
        Status.PASS,
        3,
        "jobs",
    )
    assert from_dict.output == "ok"
    assert from_dict.details == {"lag": 1}
    assert passed_through is given


async def test_custom_async_callable(run: Runner):
    """An async callable gives an async check, awaited and normalised."""

    async def probe() -> str:
        await asyncio.sleep(0)
        return "warn"

    check = custom_check("mine", probe)
    assert check.is_async
    assert (await run(check)).status is Status.WARN


async def test_custom_thresholds_grade_the_observed_value(run: Runner):
    """warn_above/fail_above grade a numeric value; the worse status wins."""
    check = custom_check("depth", lambda: {"value": 50, "unit": "jobs"}, warn_above=10)
    failing = custom_check("depth", lambda: {"status": "down", "value": 1}, warn_above=10)
    warned = await run(check)
    assert warned.status is Status.WARN
    assert warned.output == "observed 50 (above 10 jobs)"
    assert (await run(failing)).status is Status.FAIL


async def test_custom_sync_callable_returning_a_coroutine_is_an_error(run: Runner):
    """A sync callable handing back an awaitable raises TypeError (the coroutine is closed)."""

    async def probe() -> bool:
        return True

    check = custom_check("mine", lambda: probe())
    with pytest.raises(TypeError, match="async def"):
        await run(check)


def test_custom_needs_a_callable():
    """A non-callable raises ConfigError on fn."""
    with pytest.raises(ConfigError) as info:
        custom_check("mine", 42)  # type: ignore[arg-type]
    assert info.value.field == "fn"


# -- command ------------------------------------------------------------------------------------


async def test_command_exit_zero_passes_with_its_last_line(run: Runner):
    """Exit status 0 passes; the output is the last line printed."""
    check = command_check("script", [PY, "-c", "print('warming'); print('ready')"])
    result = await run(check)
    assert result.status is Status.PASS
    assert result.output == "ready"
    assert result.observed_value == 0
    assert result.details["exit_code"] == 0
    assert result.details["duration_ms"] > 0


async def test_command_failure_reports_status_and_last_line_redacted(run: Runner):
    """A non-zero exit fails with its status and the last line, secrets masked."""
    code = f"import sys; print('working'); print('password={SECRET}', file=sys.stderr); sys.exit(3)"
    result = await run(command_check("script", [PY, "-c", code]))
    assert result.status is Status.FAIL
    assert result.output == "exit status 3: password=***"
    assert result.observed_value == 3
    assert SECRET not in repr(result.details)


async def test_command_string_is_split_and_shell_runs_through_the_shell(run: Runner):
    """A string is split like a shell would; shell=True runs pipes and variables."""
    split = await run(command_check("echo", f"{PY} -c 'print(\"split ok\")'"))
    shelled = await run(command_check("sh", "echo one | tr a-z A-Z; exit 0", shell=True))
    assert split.output == "split ok"
    assert shelled.status is Status.PASS
    assert shelled.output == "ONE"


async def test_command_env_and_cwd(run: Runner, tmp_path: Path):
    """env adds to the environment; cwd sets the directory."""
    code = "import os; print(os.environ['PROBE_NAME'], os.getcwd())"
    check = command_check("env", [PY, "-c", code], env={"PROBE_NAME": "x1"}, cwd=tmp_path)
    result = await run(check)
    assert result.output == f"x1 {tmp_path}"


async def test_command_missing_program_fails(run: Runner):
    """A program that does not exist fails without raising."""
    result = await run(command_check("gone", ["buttress-no-such-program", "--version"]))
    assert result.status is Status.FAIL
    assert result.output.startswith("cannot run buttress-no-such-program")


async def test_command_is_killed_at_its_timeout(run: Runner):
    """A command running past the timeout is killed, children included, and fails."""
    check = command_check("hang", "sleep 5 & sleep 6; wait", shell=True, timeout=0.1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await run(check)
    assert loop.time() - start < 1
    assert result.status is Status.FAIL
    assert result.output.endswith("killed after 0.1s")


async def test_command_cancelled_by_the_registry_leaves_no_process(tmp_path: Path):
    """Cancelling the check (the registry's timeout) kills and reaps the command."""
    pid_file = tmp_path / "pid"
    # The child blocks until a signal kills it: the check's cancellation must do that.
    code = (
        f"import os, signal; open({str(pid_file)!r}, 'w').write(str(os.getpid())); signal.pause()"
    )
    check = command_check("hang", [PY, "-c", code], timeout=10)
    task = asyncio.ensure_future(check.fn())  # type: ignore[arg-type]
    for _ in range(300):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.01)
    pid = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize(
    ("command", "kwargs", "field"),
    [
        ("", {}, "command"),
        ([], {}, "command"),
        ("echo 'unclosed", {}, "command"),
        (5, {}, "command"),
        ("true", {"shell": "yes"}, "shell"),
        ("true", {"env": {"A": 1}}, "env"),
        ("true", {"cwd": 5}, "cwd"),
        ("true", {"timeout": "soon"}, "timeout"),
    ],
)
def test_command_options_are_validated(command, kwargs, field):
    """Bad options raise ConfigError naming the field."""
    with pytest.raises(ConfigError) as info:
        command_check("c", command, **kwargs)
    assert info.value.field == field
