"""``Fallback``: answer with a value or a factory's result when the call fails."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, ParamSpec, TypeVar, cast

from buttress import _options
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._options import CANCELLATION, ExceptionSpec
from buttress._policy import Policy
from buttress.errors import ConfigError
from buttress.events import FallbackUsed, emit, wants

__all__ = ["Fallback", "FallbackOptions", "FallbackSnapshot"]

P = ParamSpec("P")
T = TypeVar("T")

_CANCELLED: tuple[type[BaseException], ...] = (asyncio.CancelledError, *CANCELLATION)


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()
"""The default of ``Fallback(value=...)``: no value given."""


@dataclass(frozen=True, slots=True)
class FallbackOptions:
    """A fallback's options; see ``Fallback``."""

    value: object = MISSING
    factory: Callable[[BaseException | None], object] | None = None
    on: ExceptionSpec = Exception
    on_result: Callable[[Any], bool] | None = None


@dataclass(frozen=True, slots=True)
class FallbackSnapshot:
    """How many times the fallback answered instead of the call."""

    name: str
    used: int


class Fallback(Policy):
    """Return a fallback answer when the call raises a matching error or returns a bad result.

    ``Fallback(*, value=<missing>, factory=None, on=Exception, on_result=None, name="fallback",
    clock=None)``. Give exactly one of ``value`` (returned as is) or ``factory``, called with the
    exception (None when ``on_result`` rejected a result); in ``acall`` the factory may be async
    or return an awaitable, which is awaited. ``on`` is an exception type, a tuple of them or a
    predicate ``exc -> bool``; ``on_result(result) -> bool`` marks a returned result as bad.
    Cancellation (``CancelledError``, ``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit``)
    never triggers the fallback, whatever ``on`` says.
    """

    __slots__ = ("_clock", "_factory", "_is_async", "_on", "_on_result", "name", "options", "used")

    options: FallbackOptions

    def __init__(
        self,
        *,
        value: object = MISSING,
        factory: Callable[[BaseException | None], object] | None = None,
        on: ExceptionSpec = Exception,
        on_result: Callable[[Any], bool] | None = None,
        name: str = "fallback",
        clock: Clock | None = None,
    ) -> None:
        if (value is MISSING) == (factory is None):
            raise ConfigError(
                "value" if factory is None else "factory",
                MISSING if factory is None else factory,
                "give exactly one of value= or factory=",
            )
        if factory is not None and not callable(factory):
            raise ConfigError("factory", factory, "must be callable: factory(exc) -> value")
        if on_result is not None and not callable(on_result):
            raise ConfigError("on_result", on_result, "must be a predicate: on_result(result)")
        self._on = _options.exception_filter("on", on)
        self.name = name
        self.options = FallbackOptions(value, factory, on, on_result)
        self.used = 0
        self._factory = factory
        self._is_async = factory is not None and inspect.iscoroutinefunction(factory)
        self._on_result = on_result
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock

    def snapshot(self) -> FallbackSnapshot:
        """How many times the fallback was used."""
        return FallbackSnapshot(self.name, self.used)

    def _note(self, error: BaseException | None) -> None:
        self.used += 1
        if wants(FallbackUsed):
            emit(FallbackUsed(self.name, self._clock.time(), error))

    def _answer(self, error: BaseException | None) -> Any:
        """The fallback value, or whatever the factory returns (possibly an awaitable)."""
        self._note(error)
        factory = self._factory
        return self.options.value if factory is None else factory(error)

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)``; on a matching error or result return the fallback."""
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            if isinstance(exc, _CANCELLED) or not self._on(exc):
                raise
            return cast(T, self._sync_answer(exc))
        if self._on_result is not None and self._on_result(result):
            return cast(T, self._sync_answer(None))
        return result

    def _sync_answer(self, error: BaseException | None) -> Any:
        if self._is_async:
            raise TypeError(
                f"fallback {self.name!r}: the factory is async; use acall() or a sync factory"
            )
        answer = self._answer(error)
        if inspect.isawaitable(answer):
            if inspect.iscoroutine(answer):
                answer.close()  # never awaited; closing it avoids a "never awaited" warning
            raise TypeError(
                f"fallback {self.name!r}: the factory returned an awaitable in a sync call; "
                "use acall() or a sync factory"
            )
        return answer

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)``; on a matching error or result return the fallback."""
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            if isinstance(exc, _CANCELLED) or not self._on(exc):
                raise
            answer = self._answer(exc)
        else:
            if self._on_result is None or not self._on_result(result):
                return result
            answer = self._answer(None)
        if inspect.isawaitable(answer):
            answer = await answer
        return cast(T, answer)
