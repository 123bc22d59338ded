"""Retry: the constructor, the ``Retry.http`` preset, and the sync and async shells.

The shells only call, sleep and ask ``RetryCore._next`` (in ``_core.py``) what to do after a
failed attempt. The first attempt is the hot path: no clock read (unless ``timeout`` is set), no
allocation, no logging; everything else happens only after a failure.
"""

from __future__ import annotations

import functools
import inspect
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._options import Duration, optional_duration
from buttress._wrap import GENERIC, compile_wrapper, signature_of
from buttress.retry._backoff import _RNG, Backoff
from buttress.retry._budget import RetryBudget
from buttress.retry._core import RetryCore, _CallState
from buttress.retry._dead import DeadLetterSink, check_sink, send, send_async
from buttress.retry._rules import (
    DEFAULT_BACKOFF,
    RetryOptions,
    RetrySpec,
    check_runtime,
)

__all__ = ["Retry"]

P = ParamSpec("P")
T = TypeVar("T")

# Statuses worth retrying for an idempotent HTTP request.
HTTP_RETRY_STATUSES = frozenset({429, 502, 503, 504})


class Retry(RetryCore):
    """Run a call again when it fails with an error matched by ``on``.

    ``Retry(*, on, attempts=3, backoff=Backoff.exponential(), timeout=None, on_result=None,
    budget=None, clock=None, rng=None, name="retry")``. ``on`` (required): an exception type, a
    tuple of them, a predicate, or a list of ``RetryRule`` (first match wins; each rule has its
    own attempt limit and schedule). ``attempts`` counts the first call. ``timeout`` bounds the
    total time including sleeps, and no sleep passes an outer ``Timeout``'s deadline either.
    ``on_result(result) -> bool`` marks results to retry; when attempts run out the last result
    is returned. Cancellation is never retried; ``CircuitOpenError`` only when ``on`` names it.
    The last real error is re-raised with a note saying how many attempts were made.
    ``dead_letter`` (a ``DeadLetterQueue``) keeps each call that gives up, its arguments as the
    payload, in ``queue`` (default the retry's name).
    """

    __slots__ = ()

    def __init__(
        self,
        *,
        on: RetrySpec,
        attempts: int = 3,
        backoff: Backoff = DEFAULT_BACKOFF,
        timeout: Duration | None = None,
        on_result: Callable[[Any], bool] | None = None,
        budget: RetryBudget | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        name: str = "retry",
        dead_letter: DeadLetterSink | None = None,
        queue: str | None = None,
    ) -> None:
        check_runtime(name, clock, rng)
        self.name = name
        self._dead_letter, self._queue = check_sink(dead_letter, queue, name)
        self.options = RetryOptions(
            on=on,
            attempts=attempts,
            backoff=backoff,
            timeout=optional_duration("timeout", timeout),
            on_result=on_result,
            budget=budget,
        )
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._rng = _RNG if rng is None else rng
        self._timeout = self.options.timeout
        self._on_result = on_result
        self._budget = budget
        rules = self.options.rules()
        self._tests = tuple((types, predicate) for types, predicate, _, _ in rules)
        # One rule of plain types (the usual case) is classified with a single isinstance.
        self._only = rules[0][0] if len(rules) == 1 and rules[0][1] is None else None
        # One more rule stands for rejected results: the Retry's own attempts and schedule.
        self._rules: tuple[tuple[int, Backoff], ...] = (
            *((attempts, schedule) for _, _, attempts, schedule in rules),
            (self.options.attempts, self.options.backoff),
        )
        self._result_index = len(rules)
        self._slots = len(self._rules)
        self._guarded = budget is not None or self._timeout is not None
        self._fast = self._slow_successes = self._retries = self._exhausted = self._failures = 0

    @classmethod
    def http(
        cls,
        *,
        attempts: int = 3,
        backoff: Backoff | None = None,
        timeout: Duration | None = None,
        **kw: Any,
    ) -> Retry:
        """A preset for idempotent HTTP calls: connection errors, timeouts, 429, 502, 503, 504.

        Retries builtin ``ConnectionError`` and ``TimeoutError``; with httpx installed also
        ``httpx.TransportError``, ``httpx.HTTPStatusError`` and returned ``httpx.Response``
        objects with those statuses, honouring ``Retry-After``. ``backoff`` defaults to
        ``Backoff.exponential(jitter="full")``; other keywords go to ``Retry``.
        """
        try:
            import httpx
        except ImportError:  # pragma: no cover - httpx is in the dev environment
            kw.setdefault("on_result", None)
            on: RetrySpec = (ConnectionError, TimeoutError)
        else:
            on = _http_error_predicate(httpx)
            kw.setdefault("on_result", _http_result_predicate(httpx))
        if backoff is None:
            backoff = Backoff.exponential(jitter="full")
        return cls(on=on, attempts=attempts, backoff=backoff, timeout=timeout, **kw)

    # -- the shells ------------------------------------------------------------------------------
    # The first attempt is written out in call, acall and the decorator's wrappers (one Python
    # frame fewer is a third of the success path); every retry goes through _resume/_aresume.

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)``, retrying as configured."""
        started = self._enter() if self._guarded else 0.0
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            # Leave the except block before retrying, so that a later error is not chained
            # to this one as its __context__.
            state = _CallState(started, self._slots, exc, None)
        else:
            if self._on_result is None or not self._on_result(result):
                self._fast += 1
                return result
            state = _CallState(started, self._slots, None, result)
        return self._resume(state, fn, args, kwargs)

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)``, retrying as configured."""
        started = self._enter() if self._guarded else 0.0
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            state = _CallState(started, self._slots, exc, None)
        else:
            if self._on_result is None or not self._on_result(result):
                self._fast += 1
                return result
            state = _CallState(started, self._slots, None, result)
        return await self._aresume(state, fn, args, kwargs)

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync or async function so that every call is retried as configured."""
        is_async = inspect.iscoroutinefunction(fn)
        names = {
            "_bt_retry": self,
            "_bt_fn": fn,
            "_bt_on_result": self._on_result,
            "_bt_slots": self._slots,
            "_bt_CallState": _CallState,
            "_bt_resume": self._aresume if is_async else self._resume,
        }
        template = _wrapper_source(
            is_async=is_async, guarded=self._guarded, judged=self._on_result is not None
        )
        sig = signature_of(fn) or GENERIC
        return functools.wraps(fn)(compile_wrapper(fn, sig, template, names, "retry"))

    def _enter(self) -> float:
        """Deposit in the budget and note the start time, when either is configured."""
        if self._budget is not None:
            self._budget.record_call()
        return 0.0 if self._timeout is None else self._clock.monotonic()

    def _resume(
        self, state: _CallState, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T:
        """The sync retry loop, entered after a failed first attempt."""
        clock = self._clock
        on_result = self._on_result
        while True:
            delay = self._next(state)
            if delay is None:
                if self._dead_letter is not None and state.stop and state.error is not None:
                    send(self._dead_letter, self._queue, self.name, state.error, fn, args, kwargs)
                return self._finish(state)  # type: ignore[no-any-return]
            if delay > 0:
                clock.sleep(delay)
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                state.error = exc
                continue
            if on_result is not None and on_result(result):
                state.error, state.result = None, result
                continue
            self._slow_successes += 1
            return result

    async def _aresume(
        self,
        state: _CallState,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        """The async retry loop, entered after a failed first attempt."""
        clock = self._clock
        on_result = self._on_result
        while True:
            delay = self._next(state)
            if delay is None:
                sink = self._dead_letter
                if sink is not None and state.stop and state.error is not None:
                    await send_async(sink, self._queue, self.name, state.error, fn, args, kwargs)
                return self._finish(state)  # type: ignore[no-any-return]
            if delay > 0:
                await clock.asleep(delay)
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                state.error = exc
                continue
            if on_result is not None and on_result(result):
                state.error, state.result = None, result
                continue
            self._slow_successes += 1
            return result


_WRAPPER = """
{aw}def _bt_wrapper({{params}}):
    {enter}
    try:
        _bt_result = {ait}_bt_fn({{call}})
    except Exception as _bt_exc:
        _bt_state = _bt_CallState({started}, _bt_slots, _bt_exc, None)
    else:
        {judge}
            _bt_retry._fast += 1
            return _bt_result
        _bt_state = _bt_CallState({started}, _bt_slots, None, _bt_result)
    return {ait}_bt_resume(_bt_state, _bt_fn, {{args}}, {{kwargs}})
"""


def _wrapper_source(*, is_async: bool, guarded: bool, judged: bool) -> str:
    """The decorator's wrapper (compiled by ``buttress._wrap`` with the function's parameters):
    the first attempt inline, the rest in ``_resume``/``_aresume``; the start time and the
    result check are left out when not configured."""
    return _WRAPPER.format(
        aw="async " if is_async else "",
        ait="await " if is_async else "",
        enter="_bt_started = _bt_retry._enter()" if guarded else "pass",
        started="_bt_started" if guarded else "0.0",
        judge="if not _bt_on_result(_bt_result):" if judged else "if True:",
    )


def _http_error_predicate(httpx: Any) -> Callable[[BaseException], bool]:
    always = (ConnectionError, TimeoutError, httpx.TransportError)
    status_error = httpx.HTTPStatusError

    def http_retryable_error(exc: BaseException) -> bool:
        if isinstance(exc, always):
            return True
        return isinstance(exc, status_error) and exc.response.status_code in HTTP_RETRY_STATUSES

    http_retryable_error.__qualname__ = "http_retryable_error"  # what describe() shows
    return http_retryable_error


def _http_result_predicate(httpx: Any) -> Callable[[Any], bool]:
    response_type = httpx.Response

    def http_retryable_response(result: Any) -> bool:
        return isinstance(result, response_type) and result.status_code in HTTP_RETRY_STATUSES

    http_retryable_response.__qualname__ = "http_retryable_response"
    return http_retryable_response
