"""Queue for later: a failed request goes to an outbox (or the dead letter queue) and the caller
gets an ``Accepted`` receipt; the work is delivered when the dependency is back.

``Outbox`` is the interface of the dead letter queue's ``add(payload, *, error, queue, key)``,
so a ``DeadLetterQueue`` can stand in for the in-process ``InMemoryOutbox``: the receipt's id is
then the dead letter's id, the record is durable when the receipt is returned (``acall`` uses
the queue's ``aadd``, so the event loop is not blocked meanwhile), and a handler registered
with ``dlq.handler(queue)`` delivers it when the worker runs.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar, ParamSpec, Protocol, TypeVar, overload, runtime_checkable

from buttress import _options as opt
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._options import CANCELLATION, ExceptionSpec
from buttress.errors import ConfigError, DeadLetterError
from buttress.events import FallbackUsed, emit, wants
from buttress.fallback import FallbackSnapshot

__all__ = ["Accepted", "InMemoryOutbox", "Outbox", "OutboxItem", "QueueForLater"]

P = ParamSpec("P")
T = TypeVar("T")

_CANCELLED: tuple[type[BaseException], ...] = (asyncio.CancelledError, *CANCELLATION)


@runtime_checkable
class Outbox(Protocol):
    """Where deferred work goes: the dead letter queue's ``add``; it returns the record's id
    (or a record with an ``id``)."""

    def add(
        self, payload: Any, *, error: BaseException | None, queue: str, key: str | None
    ) -> object:
        """Keep ``payload`` for later delivery; a duplicate ``key`` is kept once."""
        ...


@dataclass(frozen=True, slots=True)
class Accepted:
    """The receipt of deferred work: its ``id`` in the outbox, the ``queue``, the idempotency
    ``key`` and when it was accepted (``time``, wall clock). Like HTTP 202 Accepted."""

    id: str
    queue: str
    key: str | None
    time: float

    def to_dict(self) -> dict[str, Any]:
        """The receipt as plain data."""
        return {"status": "accepted", "id": self.id, "queue": self.queue, "key": self.key}


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One piece of deferred work in an ``InMemoryOutbox``."""

    id: str
    queue: str
    payload: Any
    key: str | None
    error: str | None
    time: float


class InMemoryOutbox:
    """An in-process ``Outbox``, bounded: ``InMemoryOutbox(*, max_items=10000, clock=None)``.

    ``add`` keeps a JSON payload (DeadLetterError for anything else, or when full) and returns
    its id; an item whose ``key`` is already pending is not added again. ``deliver(handler)``
    (or ``adeliver``) hands pending items to ``handler(payload)`` oldest first and drops those it
    accepted; an item whose handler raises stays, and delivery of its queue stops there.
    """

    def __init__(self, *, max_items: int = 10_000, clock: Clock | None = None) -> None:
        self.max_items = opt.integer("max_items", max_items)
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._items: OrderedDict[str, OutboxItem] = OrderedDict()
        self._keys: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def add(
        self,
        payload: Any,
        *,
        error: BaseException | None = None,
        queue: str = "default",
        key: str | None = None,
    ) -> str:
        """Keep ``payload`` for later; returns its id (the pending one's for a known key)."""
        try:
            json.dumps(payload)
        except (TypeError, ValueError) as exc:
            raise DeadLetterError(f"outbox: the payload is not JSON: {exc}") from None
        text = None if error is None else f"{type(error).__name__}: {error}"
        with self._lock:
            if key is not None and (queue, key) in self._keys:
                return self._keys[(queue, key)]
            if len(self._items) >= self.max_items:
                raise DeadLetterError(f"outbox: full ({self.max_items} items pending)")
            item = OutboxItem(uuid.uuid4().hex, queue, payload, key, text, self._clock.time())
            self._items[item.id] = item
            if key is not None:
                self._keys[(queue, key)] = item.id
        return item.id

    def pending(self, queue: str | None = None) -> list[OutboxItem]:
        """The pending items (of ``queue``, or all), oldest first."""
        with self._lock:
            return [i for i in self._items.values() if queue is None or i.queue == queue]

    def __len__(self) -> int:
        return len(self._items)

    def _done(self, item: OutboxItem) -> None:
        with self._lock:
            self._items.pop(item.id, None)
            if item.key is not None:
                self._keys.pop((item.queue, item.key), None)

    def deliver(self, handler: Callable[[Any], object], *, queue: str | None = None) -> int:
        """Hand pending items to ``handler(payload)``; returns how many were delivered."""
        delivered, stopped = 0, set()
        for item in self.pending(queue):
            if item.queue in stopped:
                continue
            try:
                handler(item.payload)
            except Exception:
                stopped.add(item.queue)
                continue
            self._done(item)
            delivered += 1
        return delivered

    async def adeliver(
        self, handler: Callable[[Any], Awaitable[object]], *, queue: str | None = None
    ) -> int:
        """``deliver`` with an async handler."""
        delivered, stopped = 0, set()
        for item in self.pending(queue):
            if item.queue in stopped:
                continue
            try:
                await handler(item.payload)
            except Exception:
                stopped.add(item.queue)
                continue
            self._done(item)
            delivered += 1
        return delivered


def _default_payload(*args: Any, **kwargs: Any) -> Any:
    return {"args": list(args), "kwargs": kwargs}


@dataclass(frozen=True, slots=True)
class QueueOptions:
    """Queue-for-later options; see ``QueueForLater``."""

    queue: str
    payload: Callable[..., Any]
    key: Callable[..., str | None] | None
    on: ExceptionSpec


class QueueForLater:
    """Defers a request that failed: it goes to ``outbox`` and the caller gets ``Accepted``.

    ``QueueForLater(outbox, *, queue="default", payload=None, key=None, on=Exception,
    name="queue-for-later", clock=None)``. ``payload(*args, **kwargs)`` builds the JSON
    payload (default ``{"args": [...], "kwargs": {...}}``) and ``key(*args, **kwargs)`` its
    idempotency key. ``call``/``acall`` (and the decorator) return the result, or an
    ``Accepted`` when the call fails with an error matching ``on``; ``defer(*args, **kwargs)``
    queues without calling (for a feature that is off). If the outbox refuses, its error
    propagates. Each deferral is counted in ``used`` and emits ``FallbackUsed``.
    """

    registry_kind: ClassVar[str] = "fallback"

    def __init__(
        self,
        outbox: Outbox,
        *,
        queue: str = "default",
        payload: Callable[..., Any] | None = None,
        key: Callable[..., str | None] | None = None,
        on: ExceptionSpec = Exception,
        name: str = "queue-for-later",
        clock: Clock | None = None,
    ) -> None:
        if not callable(getattr(outbox, "add", None)):
            raise ConfigError("outbox", outbox, "must have add(payload, *, error, queue, key)")
        if not isinstance(queue, str) or not queue:
            raise ConfigError("queue", queue, "must be a non-empty string")
        for field, fn in (("payload", payload), ("key", key)):
            if fn is not None and not callable(fn):
                raise ConfigError(field, fn, "must be callable with the call's arguments")
        self.outbox = outbox
        self.name = name
        self.options = QueueOptions(queue, payload or _default_payload, key, on)
        self._on = opt.exception_filter("on", on)
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._ids = itertools.count(1)
        self.used = 0

    def snapshot(self) -> FallbackSnapshot:
        """How many requests were deferred."""
        return FallbackSnapshot(self.name, self.used)

    def defer(self, *args: Any, error: BaseException | None = None, **kwargs: Any) -> Accepted:
        """Queue the request made of these arguments; returns the receipt."""
        key, body = self._request(args, kwargs)
        record = self.outbox.add(body, error=error, queue=self.options.queue, key=key)
        return self._accepted(record, key, error)

    async def adefer(
        self, *args: Any, error: BaseException | None = None, **kwargs: Any
    ) -> Accepted:
        """``defer`` for asyncio: an outbox with ``aadd`` (a ``DeadLetterQueue``) is written
        without blocking the event loop while the record becomes durable."""
        aadd = getattr(self.outbox, "aadd", None)
        if not callable(aadd):
            return self.defer(*args, error=error, **kwargs)
        key, body = self._request(args, kwargs)
        record = await aadd(body, error=error, queue=self.options.queue, key=key)
        return self._accepted(record, key, error)

    def _request(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str | None, Any]:
        options = self.options
        key = options.key(*args, **kwargs) if options.key is not None else None
        return key, options.payload(*args, **kwargs)

    def _accepted(self, record: object, key: str | None, error: BaseException | None) -> Accepted:
        record_id = record if isinstance(record, str) else getattr(record, "id", None)
        if record_id is None:
            record_id = f"{self.name}-{next(self._ids)}"
        self.used += 1
        if wants(FallbackUsed):
            emit(FallbackUsed(self.name, self._clock.time(), error))
        return Accepted(str(record_id), self.options.queue, key, self._clock.time())

    def _matches(self, exc: BaseException) -> bool:
        return isinstance(exc, Exception) and not isinstance(exc, _CANCELLED) and self._on(exc)

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T | Accepted:
        """Run ``fn(*args, **kwargs)``; on a matching error queue it and return ``Accepted``."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not self._matches(exc):
                raise
            return self.defer(*args, error=exc, **kwargs)

    async def acall(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T | Accepted:
        """Await ``fn(*args, **kwargs)``; on a matching error queue it, return ``Accepted``."""
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            if not self._matches(exc):
                raise
            return await self.adefer(*args, error=exc, **kwargs)

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T | Accepted]]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T | Accepted]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync or async function: a failed call is queued and returns Accepted."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.acall(fn, *args, **kwargs)

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            return self.call(fn, *args, **kwargs)

        return wrapper

    def describe(self) -> dict[str, Any]:
        """The policy's type, name and options as plain data."""
        return {
            "policy": "QueueForLater",
            "name": self.name,
            "options": {"queue": self.options.queue, "outbox": type(self.outbox).__name__},
        }

    def __repr__(self) -> str:
        return f"QueueForLater({self.name!r})"
