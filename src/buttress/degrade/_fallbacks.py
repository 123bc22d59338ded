"""Fallback strategies beyond ``buttress.Fallback`` (which answers with a static value or a
factory's result): the last good result per key, an alternate service, canned responses.

Each is a policy (``call``, ``acall``, a decorator, ``describe``), registers in a ``Registry``
as a ``fallback`` (``registry.add(policy)``), counts its uses in ``used`` (read by the metric
``buttress_fallback_used_total{name}``) and emits a ``FallbackUsed`` event for each use.
Cancellation never triggers a fallback.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, ParamSpec, TypeVar, cast

from buttress import _options as opt
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._options import CANCELLATION, ExceptionSpec
from buttress._policy import Policy
from buttress.errors import ConfigError
from buttress.events import FallbackUsed, emit, wants
from buttress.fallback import MISSING, FallbackSnapshot

__all__ = [
    "AlternateFallback",
    "CachedFallback",
    "CannedResponses",
    "FallbackStrategy",
]

P = ParamSpec("P")
T = TypeVar("T")

_CANCELLED: tuple[type[BaseException], ...] = (asyncio.CancelledError, *CANCELLATION)
_MISS: Any = object()


class FallbackStrategy(Policy):
    """Base of the strategies: runs the call and, on an error matching ``on``, answers with
    ``_recover(error, args, kwargs)`` (which may re-raise). Subclasses may also look an answer
    up before calling (``_lookup``) and keep a result (``_keep``)."""

    __slots__ = ("_clock", "_on", "name", "options", "used")

    registry_kind: ClassVar[str] = "fallback"

    def __init__(self, name: str, on: ExceptionSpec, clock: Clock | None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError("name", name, "must be a non-empty string")
        self.name = name
        self._on = opt.exception_filter("on", on)
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self.used = 0

    def snapshot(self) -> FallbackSnapshot:
        """How many times the fallback answered instead of the call."""
        return FallbackSnapshot(self.name, self.used)

    def _note(self, error: BaseException | None) -> None:
        self.used += 1
        if wants(FallbackUsed):
            emit(FallbackUsed(self.name, self._clock.time(), error))

    def _lookup(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return _MISS

    def _keep(self, result: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        return None

    def _recover(self, error: Exception, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError

    async def _arecover(
        self, error: Exception, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        return self._recover(error, args, kwargs)

    def _matches(self, exc: BaseException) -> bool:
        return isinstance(exc, Exception) and not isinstance(exc, _CANCELLED) and self._on(exc)

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)``; on a matching error answer with the fallback."""
        found = self._lookup(args, kwargs)
        if found is not _MISS:
            return cast(T, found)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            if not self._matches(exc):
                raise
            return cast(T, self._recover(exc, args, kwargs))
        self._keep(result, args, kwargs)
        return result

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)``; on a matching error answer with the fallback."""
        found = self._lookup(args, kwargs)
        if found is not _MISS:
            return cast(T, found)
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            if not self._matches(exc):
                raise
            return cast(T, await self._arecover(exc, args, kwargs))
        self._keep(result, args, kwargs)
        return result


# -- cached ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachedOptions:
    """A cached fallback's options; see ``CachedFallback``."""

    ttl: float = 0.0
    stale_for: float = 300.0
    max_entries: int = 1024
    key: Callable[..., Hashable] | None = None
    on: ExceptionSpec = Exception


def _default_key(*args: Any, **kwargs: Any) -> Hashable:
    return (args, tuple(sorted(kwargs.items()))) if kwargs else args


class CachedFallback(FallbackStrategy):
    """Keeps the last good result per key and serves it, stale, when the call fails.

    ``CachedFallback(*, ttl=0.0, stale_for=300.0, max_entries=1024, key=None, on=Exception,
    name="cached", clock=None)``. A result younger than ``ttl`` seconds is served without
    calling (0: always call). When the call fails with an error matching ``on``, a result at
    most ``ttl + stale_for`` seconds old is served instead (HTTP's ``stale-if-error``); an older
    one, or none, lets the error through. ``key(*args, **kwargs)`` (default: the arguments,
    which must be hashable) picks the entry; the least recently used entries beyond
    ``max_entries`` are dropped.
    """

    __slots__ = ("_entries", "_key", "_lock", "hits")

    options: CachedOptions

    def __init__(
        self,
        *,
        ttl: opt.Duration = 0.0,
        stale_for: opt.Duration = 300.0,
        max_entries: int = 1024,
        key: Callable[..., Hashable] | None = None,
        on: ExceptionSpec = Exception,
        name: str = "cached",
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name, on, clock)
        fresh = opt.duration("ttl", ttl, allow_zero=True)
        stale = opt.duration("stale_for", stale_for, allow_zero=True)
        size = opt.integer("max_entries", max_entries)
        if key is not None and not callable(key):
            raise ConfigError("key", key, "must be callable: key(*args, **kwargs) -> hashable")
        self.options = CachedOptions(fresh, stale, size, key, on)
        self._key: Callable[..., Hashable] = key if key is not None else _default_key
        self._entries: OrderedDict[Hashable, tuple[object, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        """Calls answered from a fresh entry without calling."""

    def _entry_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
        key = self._key(*args, **kwargs)
        try:
            hash(key)
        except TypeError:
            raise TypeError(
                f"fallback {self.name!r}: the arguments are not hashable; give key="
            ) from None
        return key

    def _lookup(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.options.ttl <= 0:
            return _MISS
        key = self._entry_key(args, kwargs)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self._clock.monotonic() - entry[1] > self.options.ttl:
                return _MISS
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def _keep(self, result: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        key = self._key(*args, **kwargs)
        entries = self._entries
        with self._lock:
            try:
                entries[key] = (result, self._clock.monotonic())
            except TypeError:
                raise TypeError(
                    f"fallback {self.name!r}: the arguments are not hashable; give key="
                ) from None
            entries.move_to_end(key)
            if len(entries) > self.options.max_entries:
                entries.popitem(last=False)

    def _recover(self, error: Exception, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        key = self._entry_key(args, kwargs)
        limit = self.options.ttl + self.options.stale_for
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or self._clock.monotonic() - entry[1] > limit:
            raise error
        self._note(error)
        return entry[0]

    def forget(self, *args: Any, **kwargs: Any) -> bool:
        """Drop the entry of these arguments; whether there was one."""
        key = self._entry_key(args, kwargs)
        with self._lock:
            return self._entries.pop(key, None) is not None

    def __len__(self) -> int:
        return len(self._entries)


# -- alternate -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlternateOptions:
    """An alternate fallback's options; see ``AlternateFallback``."""

    alternate: Callable[..., Any]
    on: ExceptionSpec = Exception


class AlternateFallback(FallbackStrategy):
    """Calls another service when the call fails.

    ``AlternateFallback(alternate, *, on=Exception, name="alternate", clock=None)``: on an
    error matching ``on``, returns ``alternate(*args, **kwargs)`` (awaited in ``acall`` if it
    returns an awaitable). An error of the alternate propagates, chained to the first one.
    """

    __slots__ = ()

    options: AlternateOptions

    def __init__(
        self,
        alternate: Callable[..., Any],
        *,
        on: ExceptionSpec = Exception,
        name: str = "alternate",
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name, on, clock)
        if not callable(alternate):
            raise ConfigError("alternate", alternate, "must be callable with the same arguments")
        self.options = AlternateOptions(alternate, on)

    def _recover(self, error: Exception, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self._note(error)
        answer = self.options.alternate(*args, **kwargs)
        if inspect.isawaitable(answer):
            if inspect.iscoroutine(answer):
                answer.close()
            raise TypeError(f"fallback {self.name!r}: the alternate is async; use acall()")
        return answer

    async def _arecover(
        self, error: Exception, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        self._note(error)
        answer = self.options.alternate(*args, **kwargs)
        return await answer if inspect.isawaitable(answer) else answer


# -- canned ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CannedOptions:
    """Canned responses' options; see ``CannedResponses``."""

    responses: Mapping[str, object]
    default: object = MISSING
    intent: Callable[..., str | None] | None = None
    on: ExceptionSpec = Exception


class CannedResponses(FallbackStrategy):
    """Prepared answers by intent, for a dependency that cannot answer (an AI model).

    ``CannedResponses(responses, *, default=<none>, intent=None, on=Exception,
    name="canned", clock=None)``. ``respond("greeting")`` returns the answer for an intent
    (``default`` for an unknown one; LookupError without a default) and counts as a use. As a
    policy, a call failing with an error matching ``on`` answers ``respond(intent(*args,
    **kwargs))``; without ``intent`` the ``default`` answers.
    """

    __slots__ = ()

    options: CannedOptions

    def __init__(
        self,
        responses: Mapping[str, object],
        *,
        default: object = MISSING,
        intent: Callable[..., str | None] | None = None,
        on: ExceptionSpec = Exception,
        name: str = "canned",
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name, on, clock)
        if not isinstance(responses, Mapping) or not all(isinstance(k, str) for k in responses):
            raise ConfigError("responses", responses, "must map intent names to answers")
        if not responses and default is MISSING:
            raise ConfigError("responses", responses, "must hold an answer, or give default=")
        if intent is not None and not callable(intent):
            raise ConfigError("intent", intent, "must be callable: intent(*args) -> str")
        frozen = MappingProxyType(dict(responses))
        self.options = CannedOptions(frozen, default, intent, on)

    def intents(self) -> list[str]:
        """The intents with a prepared answer, sorted."""
        return sorted(self.options.responses)

    def respond(self, intent: str | None = None, error: BaseException | None = None) -> Any:
        """The canned answer for ``intent`` (the default for None or an unknown intent)."""
        answer = self._answer_for(intent)
        if answer is _MISS:
            raise LookupError(f"fallback {self.name!r}: no canned answer for intent {intent!r}")
        self._note(error)
        return answer

    def _answer_for(self, intent: str | None) -> Any:
        responses = self.options.responses
        if intent is not None and intent in responses:
            return responses[intent]
        default = self.options.default
        return _MISS if default is MISSING else default

    def _recover(self, error: Exception, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        classify = self.options.intent
        intent = classify(*args, **kwargs) if classify is not None else None
        if self._answer_for(intent) is _MISS:
            raise error
        return self.respond(intent, error)
