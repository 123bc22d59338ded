"""``CircuitBreaker``: the sync and async shells around ``BreakerCore``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, Self, TypeVar, overload

from buttress import events
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._options import ExceptionSpec, duration
from buttress._policy import Policy
from buttress._wrap import GENERIC, compile_wrapper, signature_of
from buttress.breaker._core import NO_PERMIT, BreakerCore
from buttress.breaker._state import BreakerOptions, BreakerSnapshot, BreakerState
from buttress.breaker._window import TimeWindow
from buttress.errors import CircuitOpenError

if TYPE_CHECKING:
    from datetime import timedelta
    from random import Random

    from buttress.retry import Backoff
    from buttress.stores import Store

__all__ = ["CircuitBreaker"]

P = ParamSpec("P")
T = TypeVar("T")

_CLOSED = BreakerState.CLOSED
# Builds a rejection without running a Python __init__ (see RejectedError).
_new_error = BaseException.__new__

# The decorator's wrappers, compiled with the decorated function's parameters (buttress._wrap).
_SYNC_WRAPPER = """
def _bt_wrapper({params}):
    if _bt_breaker._fast:
        try:
            _bt_result = _bt_fn({call})
        except BaseException as _bt_exc:
            _bt_settle_error(_bt_exc, _bt_NO_PERMIT, 0.0)
            raise
        next(_bt_seq)
        return _bt_result
    _bt_wait = _bt_breaker._reject_until - _bt_monotonic()
    if _bt_wait > 0:
        next(_bt_rejected)
        raise _bt_new_error(_bt_CircuitOpenError, _bt_name, _bt_wait)
    return _bt_call(_bt_fn, {call})
"""
_ASYNC_WRAPPER = """
async def _bt_wrapper({params}):
    if _bt_breaker._fast:
        try:
            _bt_result = await _bt_fn({call})
        except BaseException as _bt_exc:
            _bt_settle_error(_bt_exc, _bt_NO_PERMIT, 0.0)
            raise
        next(_bt_seq)
        return _bt_result
    _bt_wait = _bt_breaker._reject_until - _bt_monotonic()
    if _bt_wait > 0:
        next(_bt_rejected)
        raise _bt_new_error(_bt_CircuitOpenError, _bt_name, _bt_wait)
    return await _bt_call(_bt_fn, {call})
"""


class CircuitBreaker(BreakerCore, Policy):
    """Stops calling a dependency that keeps failing, and probes it before trusting it again.

    CLOSED: calls flow; outcomes go into a window of the last ``window`` calls (or of the last
    ``window_seconds``). With at least ``minimum_calls`` in the window, a failure rate
    >= ``failure_rate`` or a slow-call rate (calls longer than ``slow_call_duration``)
    >= ``slow_call_rate`` opens it; so do ``consecutive_failures`` failures in a row, when set.
    OPEN: calls fail fast with ``CircuitOpenError`` (with ``retry_after``) for ``open_for``
    seconds (growing with ``open_backoff`` on repeated openings). HALF_OPEN: at most
    ``half_open_calls`` concurrent trials; ``success_threshold`` successes close it, a failure
    reopens it, and a trial that does not report within the open period counts as failed.
    ``on`` says what is a failure (other exceptions count as successes), ``ignore`` wins over
    ``on`` and is not recorded, ``on_result`` marks results as failures; cancellation never
    counts. Defaults: failure_rate=0.5, minimum_calls=10, window=100, open_for=60 s.

    ``shared=store`` makes the breaker fleet-wide (``buttress.fleet``): the same hot path, plus
    the process's fleet sync thread (started here, with the first shared object; ``close()``
    stops syncing) flushing outcomes every ``sync_interval`` (0.25 s) and refreshing the state
    at least every ``staleness`` (1 s). Without ``shared`` nothing of that exists.
    """

    __slots__ = ("_clock", "_slow_after")

    def __new__(cls, name: str, *args: Any, shared: Store | None = None, **kwargs: Any) -> Self:
        if shared is not None and cls is CircuitBreaker:
            from buttress.fleet._breaker import SharedCircuitBreaker

            return super().__new__(SharedCircuitBreaker)  # type: ignore[return-value]
        return super().__new__(cls)

    def __init__(
        self,
        name: str,
        *,
        failure_rate: float = 0.5,
        minimum_calls: int = 10,
        window: int = 100,
        window_seconds: float | timedelta | None = None,
        slow_call_duration: float | timedelta | None = None,
        slow_call_rate: float = 1.0,
        consecutive_failures: int | None = None,
        open_for: float | timedelta = 60.0,
        open_backoff: Backoff | None = None,
        half_open_calls: int = 1,
        success_threshold: int = 1,
        on: ExceptionSpec = Exception,
        ignore: ExceptionSpec = (),
        on_result: Callable[[Any], bool] | None = None,
        clock: Clock | None = None,
        rng: Random | None = None,
        shared: Store | None = None,
        sync_interval: float | timedelta = 0.25,
        staleness: float | timedelta = 1.0,
    ) -> None:
        options = BreakerOptions(
            failure_rate=failure_rate,
            minimum_calls=minimum_calls,
            window=window,
            window_seconds=window_seconds,  # type: ignore[arg-type]  # normalised in __post_init__
            slow_call_duration=slow_call_duration,  # type: ignore[arg-type]
            slow_call_rate=slow_call_rate,
            consecutive_failures=consecutive_failures,
            open_for=duration("open_for", open_for),
            open_backoff=open_backoff,
            half_open_calls=half_open_calls,
            success_threshold=success_threshold,
            on=on,
            ignore=ignore,
            on_result=on_result,
        )
        self._clock = clock = clock if clock is not None else SYSTEM_CLOCK
        super().__init__(name, options, clock.monotonic(), clock.time())
        if rng is not None:
            self._rng = rng
        self._slow_after = options.slow_call_duration

    @classmethod
    def from_options(
        cls, name: str, options: BreakerOptions, *, clock: Clock | None = None
    ) -> CircuitBreaker:
        """Build a breaker from an options object (as configuration does)."""
        fields = {f: getattr(options, f) for f in BreakerOptions.__dataclass_fields__}
        return cls(name, clock=clock, **fields)

    # -- the two shells ------------------------------------------------------------------------

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` through the breaker; raises ``CircuitOpenError`` when it is open."""
        if self._fast:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self._settle_error(exc, NO_PERMIT, 0.0)
                raise
            next(self._seq)
            return result
        now = self._clock.monotonic()
        wait = self._reject_until - now
        if wait > 0:  # the common rejection: inline, lock-free, C-built error
            next(self._count_rejected)
            raise _new_error(CircuitOpenError, self.name, wait)
        permit, start = self._enter(now)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._settle_error(exc, permit, start)
            raise
        self._settle_result(result, permit, start)
        return result

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn`` through the breaker; raises ``CircuitOpenError`` when it is open."""
        if self._fast:
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                self._settle_error(exc, NO_PERMIT, 0.0)
                raise
            next(self._seq)
            return result
        now = self._clock.monotonic()
        wait = self._reject_until - now
        if wait > 0:  # the common rejection: inline, lock-free, C-built error
            next(self._count_rejected)
            raise _new_error(CircuitOpenError, self.name, wait)
        permit, start = self._enter(now)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._settle_error(exc, permit, start)
            raise
        self._settle_result(result, permit, start)
        return result

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync or async function; the closed-state path is inlined in the wrapper."""
        is_async = inspect.iscoroutinefunction(fn)
        names = {
            "_bt_breaker": self,
            "_bt_fn": fn,
            "_bt_seq": self._seq,
            "_bt_settle_error": self._settle_error,
            "_bt_monotonic": self._clock.monotonic,
            "_bt_name": self.name,
            "_bt_rejected": self._count_rejected,
            "_bt_new_error": _new_error,
            "_bt_CircuitOpenError": CircuitOpenError,
            "_bt_NO_PERMIT": NO_PERMIT,
            "_bt_call": self.acall if is_async else self.call,
        }
        sig = signature_of(fn)
        if sig is None:
            sig = GENERIC
        template = _ASYNC_WRAPPER if is_async else _SYNC_WRAPPER
        wrapper = compile_wrapper(fn, sig, template, names, "breaker")
        return functools.wraps(fn)(wrapper)

    def _enter(self, now: float) -> tuple[int, float]:
        try:
            return self.admit(now), now
        finally:
            if self.pending:
                self._announce()

    def _settle_error(self, exc: BaseException, permit: int, start: float) -> None:
        kind = self.classify(exc)
        if kind == 0:  # cancellation: not an outcome, but a trial's permit goes back
            if permit != NO_PERMIT:
                self.record_ignored(permit)
            return
        if kind == 1:
            self.record_ignored(permit)
            return
        self._settle(kind == 3, permit, start)

    def _settle_result(self, result: object, permit: int, start: float) -> None:
        on_result = self.options.on_result
        self._settle(on_result is not None and bool(on_result(result)), permit, start)

    def _settle(self, failed: bool, permit: int, start: float) -> None:
        now = self._clock.monotonic()
        slow = self._slow_after is not None and now - start >= self._slow_after
        window = self._window
        if isinstance(window, TimeWindow) and now >= window.bucket_end:
            self.rotate(now)
        self.record(permit, failed, slow, now)
        if self.pending:
            self._announce()

    def _announce(self) -> None:
        time = self._clock.time()
        for transition in self.take_pending():
            if events.wants(events.BreakerStateChanged):
                events.emit(
                    events.BreakerStateChanged(
                        source=self.name,
                        time=time,
                        old=transition.old.value,
                        new=transition.new.value,
                        reason=transition.reason,
                    )
                )

    # -- state and manual control -------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The current state (an OPEN breaker whose time is up reads as HALF_OPEN)."""
        state = self.observe(self._clock.monotonic())
        if self.pending:
            self._announce()
        return state

    def reset(self) -> None:
        """Close the breaker and clear its window (also ends ``trip`` and ``disable``)."""
        self._force(_CLOSED, "reset by hand")

    def trip(self) -> None:
        """Open the breaker until ``reset()``, whatever the calls do."""
        self._force(BreakerState.FORCED_OPEN, "tripped by hand")

    def disable(self) -> None:
        """Let every call through until ``reset()``; outcomes are still counted."""
        self._force(BreakerState.DISABLED, "disabled by hand")

    def _force(self, state: BreakerState, reason: str) -> None:
        self.force(state, reason, self._clock.monotonic())
        if self.pending:
            self._announce()

    def snapshot(self) -> BreakerSnapshot:
        """State, rates over the window, and lifetime counts, read consistently."""
        snap = self.snapshot_at(self._clock.monotonic())
        if self.pending:
            self._announce()
        return snap
