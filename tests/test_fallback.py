"""Fallback: value or factory on matching errors and rejected results; never on cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from buttress.errors import ConfigError
from buttress.events import FallbackUsed
from buttress.fallback import Fallback, FallbackSnapshot
from buttress.testing import RecordingListener
from tests.conftest import run


def fail(error: BaseException) -> Any:
    raise error


async def test_value_replaces_a_matching_error(mode: str) -> None:
    """A matching exception is replaced by the fallback value."""
    fallback = Fallback(value="cached", on=ConnectionError)
    assert await run(mode, fallback, fail, ConnectionError("down")) == "cached"
    assert await run(mode, fallback, lambda: "live") == "live"
    assert fallback.snapshot() == FallbackSnapshot("fallback", 1)


async def test_other_errors_pass_through(mode: str) -> None:
    """An exception that does not match ``on`` propagates unchanged."""
    fallback = Fallback(value=0, on=(KeyError, ConnectionError))
    with pytest.raises(ValueError, match="bad"):
        await run(mode, fallback, fail, ValueError("bad"))
    assert fallback.used == 0


async def test_predicate_decides(mode: str) -> None:
    """``on`` may be a predicate on the exception."""
    fallback = Fallback(value="soft", on=lambda exc: "retryable" in str(exc))
    assert await run(mode, fallback, fail, RuntimeError("retryable glitch")) == "soft"
    with pytest.raises(RuntimeError):
        await run(mode, fallback, fail, RuntimeError("fatal"))


async def test_factory_receives_the_exception(mode: str) -> None:
    """The factory is called with the exception that triggered the fallback."""
    error = ConnectionError("down")
    fallback = Fallback(factory=lambda exc: f"fallback for {exc!r}")
    assert await run(mode, fallback, fail, error) == f"fallback for {error!r}"


async def test_rejected_result_uses_the_fallback(mode: str) -> None:
    """A result rejected by on_result is replaced; the factory then receives None."""
    seen: list[BaseException | None] = []

    def factory(exc: BaseException | None) -> str:
        seen.append(exc)
        return "default"

    fallback = Fallback(factory=factory, on_result=lambda result: result is None)
    assert await run(mode, fallback, lambda: None) == "default"
    assert await run(mode, fallback, lambda: "real") == "real"
    assert seen == [None]


async def test_value_none_is_a_real_value(mode: str) -> None:
    """value=None is a valid fallback value, not "missing"."""
    assert await run(mode, Fallback(value=None), fail, OSError()) is None


async def test_async_factory_is_awaited() -> None:
    """In acall an async factory (or one returning an awaitable) is awaited."""

    async def afactory(exc: BaseException | None) -> str:
        await asyncio.sleep(0)
        return f"async {type(exc).__name__}"

    async def broken() -> str:
        raise ConnectionError

    assert await Fallback(factory=afactory).acall(broken) == "async ConnectionError"
    assert await Fallback(factory=lambda exc: afactory(exc)).acall(broken) == (
        "async ConnectionError"
    )


def test_async_factory_in_sync_call_is_a_type_error() -> None:
    """A sync call cannot await, so an async factory raises a clear TypeError."""

    async def afactory(exc: BaseException | None) -> str:
        return "never"

    with pytest.raises(TypeError, match="factory is async"):
        Fallback(factory=afactory).call(fail, OSError())
    # A sync callable that returns a coroutine is caught too (and the coroutine is closed).
    with pytest.raises(TypeError, match="returned an awaitable"):
        Fallback(factory=lambda exc: afactory(exc)).call(fail, OSError())


async def test_cancellation_never_triggers_the_fallback() -> None:
    """CancelledError passes through even when ``on`` would match everything."""
    fallback = Fallback(value="nope", on=BaseException)

    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await fallback.acall(cancelled)

    task = asyncio.create_task(fallback.acall(asyncio.sleep, 10))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fallback.used == 0


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(1), GeneratorExit()])
def test_interrupts_never_trigger_the_fallback(error: BaseException) -> None:
    """KeyboardInterrupt, SystemExit and GeneratorExit pass through a sync fallback."""
    with pytest.raises(type(error)):
        Fallback(value="nope", on=BaseException).call(fail, error)


async def test_use_emits_an_event() -> None:
    """Each use is reported as a FallbackUsed event carrying the error."""
    error = ConnectionError("down")
    with RecordingListener() as events:
        Fallback(value=1, name="prices").call(fail, error)
    (event,) = events.of(FallbackUsed)
    assert (event.source, event.error) == ("prices", error)


async def test_decorators() -> None:
    """Decorated sync and async functions fall back on failure."""
    fallback = Fallback(value=-1)

    @fallback
    def parse(text: str) -> int:
        return int(text)

    @fallback
    async def aparse(text: str) -> int:
        return int(text)

    assert (parse("3"), parse("x")) == (3, -1)
    assert (await aparse("4"), await aparse("y")) == (4, -1)
    assert fallback.used == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "value"),
        ({"value": 1, "factory": lambda exc: 2}, "factory"),
        ({"factory": "not callable"}, "factory"),
        ({"value": 1, "on": "ValueError"}, "on"),
        ({"value": 1, "on": (ValueError, "x")}, "on"),
        ({"value": 1, "on_result": 3}, "on_result"),
    ],
)
def test_bad_options_are_rejected(kwargs: dict[str, Any], field: str) -> None:
    """Missing or conflicting value/factory and bad filters raise ConfigError naming the field."""
    with pytest.raises(ConfigError, match=f"^{field}: ") as info:
        Fallback(**kwargs)
    assert info.value.field == field


def test_describe_lists_the_options() -> None:
    """describe() reports the fallback's options."""
    assert Fallback(value=0, on=KeyError).describe()["options"] == {
        "value": 0,
        "factory": None,
        "on": "KeyError",
        "on_result": None,
    }
