"""``HealthRegistry``: named checks run in parallel, with timeouts, caching and background refresh.

Each check runs in its own worker: an async check as a task on the running loop, a sync check in
a new daemon thread. Threads are daemons, not a pool's, so that a hung sync check can neither take
a pool's slots from the others nor keep the interpreter (or ``asyncio.run``) from exiting; a sync
check whose previous run is still hung is not started again (it fails at once), so a hung check
holds at most one thread. Timeouts are timers on the injected clock (``clock.call_at``), so
``ManualClock`` drives them in virtual time; the check sees its deadline through
``buttress.remaining()``.

A result is served from cache for the check's ``ttl``; after that it is served *stale*, with its
age, while one background refresh per check runs. Evaluating fresh cached results awaits nothing
and creates no task.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import math
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypedDict, TypeVar, Unpack, overload

from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._deadline import DEADLINE
from buttress.errors import ConfigError
from buttress.health._model import GROUPS, Check, CheckFunction, CheckResult, Status, to_result
from buttress.health._report import CheckOutcome, HealthReport

__all__ = ["CheckFields", "HealthRegistry"]

F = TypeVar("F", bound=Callable[..., Any])
_Flight = asyncio.Future[CheckResult]


class CheckFields(TypedDict, total=False):
    """The ``Check`` fields that ``HealthRegistry.add`` accepts as keywords."""

    component_type: str
    measurement: str
    critical: bool
    groups: str | Iterable[str]
    timeout: float | timedelta
    ttl: float | timedelta


class _Entry:
    """A check and its cache: last result, when it finished, the run in flight, and whether the
    thread of its last sync run has returned (None before any sync run)."""

    __slots__ = ("at", "check", "flight", "result", "returned")

    def __init__(self, check: Check) -> None:
        self.check = check
        self.result: CheckResult | None = None
        self.at = 0.0
        self.flight: _Flight | None = None
        self.returned: threading.Event | None = None


_NOT_RUN = CheckResult(Status.UNKNOWN, "not run yet")


class HealthRegistry:
    """Named health checks, run in parallel with timeouts and per-check caching.

    ``HealthRegistry(*, clock=None)`` (default ``SystemClock()``). Every registry starts with two
    liveness checks, the only ones liveness ever runs: ``process`` (pass; observed value: seconds
    since the registry was created) and ``event_loop`` (the loop's lag, warn above 100 ms, fail
    above 1 s). Adding a check with one of those names replaces the built-in one.

    >>> registry = HealthRegistry()
    >>> registry.add(lambda: True, name="cache", critical=False).key
    'cache:status'
    >>> registry.run_sync("readiness").status
    <Status.PASS: 'pass'>
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._groups: dict[str | None, tuple[_Entry, ...]] = {}
        self._generation = 0  # bumped by every new result and every change of the checks
        self._created = self.clock.monotonic()
        self.add(
            self._process,
            name="process",
            component_type="system",
            measurement="uptime",
            groups="liveness",
            timeout=1.0,
            ttl=1.0,
        )
        from buttress.health.checks import event_loop_check  # the checks import this module

        self.add(event_loop_check(timeout=1.0, ttl=1.0))
        self._builtin = {"process", "event_loop"}

    async def _process(self) -> CheckResult:
        uptime = round(self.clock.monotonic() - self._created, 3)
        return CheckResult(Status.PASS, observed_value=uptime, observed_unit="s")

    # -- declaring checks --------------------------------------------------------------------

    def add(
        self,
        check_or_fn: Check | CheckFunction,
        *,
        name: str | None = None,
        **options: Unpack[CheckFields],
    ) -> Check:
        """Register a ``Check``, or a sync/async callable with ``Check`` fields as keywords
        (``component_type``, ``measurement``, ``critical``, ``groups``, ``timeout``, ``ttl``).
        ``name`` defaults to the function's name. Only ``system`` checks may be in ``liveness``;
        a duplicate name raises ``ConfigError``. Returns the registered ``Check``."""
        if isinstance(check_or_fn, Check):
            check = check_or_fn
            if name is not None or options:
                check = replace(check, name=name or check.name, **options)  # type: ignore[arg-type]
        else:
            if name is None:
                name = getattr(check_or_fn, "__name__", None)
                if not name or name == "<lambda>":
                    raise ConfigError("name", name, "must be given for this check")
            # Check normalises groups (a name or names) and durations (timedelta) itself.
            check = Check(name, check_or_fn, **options)  # type: ignore[arg-type]
        if "liveness" in check.groups and check.component_type != "system":
            raise ConfigError(
                f"{check.name}.groups",
                sorted(check.groups),
                "must not include 'liveness' unless component_type is 'system' "
                "(liveness never runs dependency checks)",
            )
        with self._lock:
            if check.name in getattr(self, "_builtin", ()):
                self._builtin.discard(check.name)
                self._entries.pop(check.name, None)
            if check.name in self._entries:
                raise ConfigError("name", check.name, "is already a registered health check")
            self._entries[check.name] = _Entry(check)
            self._groups = {}
            self._generation += 1
        return check

    @overload
    def check(self, fn: F, /) -> F: ...
    @overload
    def check(
        self, fn: None = None, /, *, name: str | None = None, **options: Unpack[CheckFields]
    ) -> Callable[[F], F]: ...

    def check(
        self, fn: F | None = None, /, *, name: str | None = None, **options: Unpack[CheckFields]
    ) -> F | Callable[[F], F]:
        """Decorator registering the function as a check: ``@registry.check`` or
        ``@registry.check(name=..., critical=False, ...)``; the function is returned unchanged."""

        def register(func: F) -> F:
            self.add(func, name=name, **options)
            return func

        return register if fn is None else register(fn)

    def remove(self, name: str) -> Check:
        """Unregister the check called ``name`` and return it; ``KeyError`` if there is none."""
        with self._lock:
            entry = self._entries.pop(name)
            self._groups = {}
            self._generation += 1
        return entry.check

    def checks(self, group: str | None = None) -> tuple[Check, ...]:
        """The registered checks of ``group`` (all when None), in registration order."""
        return tuple(entry.check for entry in self._select(group))

    def last_results(self) -> tuple[tuple[Check, CheckResult | None], ...]:
        """Every check with its last result (None when it never ran), running none of them."""
        return tuple((entry.check, entry.result) for entry in self._select(None))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def _select(self, group: str | None) -> tuple[_Entry, ...]:
        selected = self._groups.get(group)
        if selected is None:
            if group is not None and group not in GROUPS:
                raise ConfigError("group", group, f"must be one of {sorted(GROUPS)} or None")
            with self._lock:
                selected = tuple(
                    entry
                    for entry in self._entries.values()
                    if group is None or group in entry.check.groups
                )
                groups = dict(self._groups)
                groups[group] = selected
                self._groups = groups
        return selected

    def fresh_until(self, group: str | None = None) -> tuple[int, float]:
        """``(generation, until)``: while no result changes (the generation stays the same),
        ``run(group)`` serves the same cached results until the monotonic time ``until``
        (``-inf`` when a check has no result yet or is not cached)."""
        generation, until = self._generation, math.inf
        for entry in self._select(group):
            ttl = entry.check.ttl
            if entry.result is None or ttl <= 0:
                return generation, -math.inf
            until = min(until, entry.at + ttl)
        return generation, until

    @property
    def generation(self) -> int:
        """A number that changes whenever a check is added or removed or a result arrives."""
        return self._generation

    # -- running ------------------------------------------------------------------------------

    async def run(
        self, group: str | None = None, *, fresh: bool = False, wait: bool = True
    ) -> HealthReport:
        """Run the checks of ``group`` (all when None) in parallel and report.

        A result younger than its check's ``ttl`` is served from cache; an older one is served at
        once (``stale=True``, with its age) while a background refresh runs. A check never run is
        run now, or with ``wait=False`` reported UNKNOWN while it starts in the background.
        ``fresh=True`` runs every check now. A check with ``ttl=0`` is not cached: it runs now
        (with ``wait=False``, its last result is served stale while it runs again). An unknown
        ``group`` raises ``ConfigError``.
        """
        return await self._run(group, fresh, wait, True)

    def run_sync(
        self, group: str | None = None, *, fresh: bool = False, wait: bool = True
    ) -> HealthReport:
        """``run`` for sync callers, in a new event loop. As no loop outlives the call, stale
        results are refreshed before returning. Raises ``RuntimeError`` inside a running loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._run(group, fresh, wait, False))
        raise RuntimeError(
            "HealthRegistry.run_sync() cannot run inside a running event loop; "
            "use `await registry.run()` instead"
        )

    async def _run(
        self, group: str | None, fresh: bool, wait: bool, background: bool
    ) -> HealthReport:
        entries = self._select(group)
        now = self.clock.monotonic()
        outcomes: dict[str, CheckOutcome] = {}
        pending: list[tuple[_Entry, _Flight]] = []
        for entry in entries:
            check, result = entry.check, entry.result
            if result is None:
                if wait:
                    pending.append((entry, self._flight(entry)))
                    continue
                if background:
                    self._flight(entry)
                outcomes[check.name] = CheckOutcome(check, _NOT_RUN, None, False)
                continue
            if not fresh:
                age = now - entry.at
                ttl = check.ttl
                if age <= ttl and ttl > 0:
                    outcomes[check.name] = CheckOutcome(check, result, age, False)
                    continue
                # Stale: serve it and refresh behind it (ttl=0: only when told not to wait).
                if background and (ttl > 0 or not wait):
                    self._flight(entry)
                    outcomes[check.name] = CheckOutcome(check, result, age, True)
                    continue
            pending.append((entry, self._flight(entry)))
        if pending:
            await asyncio.wait([flight for _, flight in pending])
            for entry, flight in pending:
                outcomes[entry.check.name] = CheckOutcome(entry.check, flight.result(), 0.0, False)
            # Report in registration order, whichever finished first.
            outcomes = {e.check.name: outcomes[e.check.name] for e in entries}
        worst = 0
        for outcome in outcomes.values():
            severity = outcome.result.status.severity
            worst = max(worst, severity if outcome.check.critical else min(severity, 1))
        return HealthReport(_BY_SEVERITY[worst], group, outcomes)

    def _flight(self, entry: _Entry) -> _Flight:
        """The run of ``entry`` in flight on this loop, started if there is none."""
        loop = asyncio.get_running_loop()
        flight = entry.flight
        if flight is not None and not flight.done() and flight.get_loop() is loop:
            return flight
        flight = entry.flight = loop.create_future()
        self._start(entry, flight, loop)
        return flight

    def _start(self, entry: _Entry, flight: _Flight, loop: asyncio.AbstractEventLoop) -> None:
        clock, check = self.clock, entry.check
        started = clock.monotonic()
        deadline = started + check.timeout
        task: asyncio.Task[CheckResult] | None = None
        cancel_box: list[Callable[[], object]] = []

        def settle(result: CheckResult) -> None:
            if flight.done():
                return
            timer.cancel()
            result = replace(result, time=clock.time(), duration=clock.monotonic() - started)
            entry.result, entry.at = result, clock.monotonic()
            self._generation += 1
            if entry.flight is flight:
                entry.flight = None
            flight.set_result(result)

        def expire() -> None:
            if flight.done():
                return
            settle(CheckResult.failed(f"timed out after {check.timeout:g}s"))
            if task is not None:
                task.cancel()
            for cancel in cancel_box:
                cancel()

        def on_timer() -> None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                expire()
            else:  # ManualClock advanced from another thread
                _call_soon(loop, expire)

        timer = clock.call_at(deadline, on_timer)
        context = contextvars.copy_context()
        context.run(DEADLINE.set, (deadline, clock))
        if check.is_async:
            task = loop.create_task(_call_async(check.fn), context=context)
            task.add_done_callback(lambda done: _task_done(done, flight, entry, settle))
            return
        if entry.returned is not None and not entry.returned.is_set():
            hung = f"still hung: an earlier run timed out after {check.timeout:g}s"
            settle(CheckResult.failed(hung))
            return
        returned = threading.Event()
        worker = threading.Thread(
            target=_call_in_thread,
            args=(check.fn, context, loop, settle, cancel_box, returned),
            name=f"buttress-health-{check.name}",
            daemon=True,
        )
        entry.returned = returned
        worker.start()


_BY_SEVERITY = (Status.PASS, Status.WARN, Status.FAIL)


def _error_result(exc: BaseException) -> CheckResult:
    """A failing result saying ``ErrorType: message`` (redacted)."""
    text = str(exc)
    return CheckResult.failed(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


async def _call_async(fn: CheckFunction) -> CheckResult:
    try:
        value = fn()
        if inspect.isawaitable(value):
            value = await value
        return to_result(value)
    except Exception as exc:
        return _error_result(exc)


def _task_done(
    task: asyncio.Task[CheckResult],
    flight: _Flight,
    entry: _Entry,
    settle: Callable[[CheckResult], None],
) -> None:
    if not task.cancelled():
        settle(task.result())
    elif not task.cancelling():  # the check raised CancelledError itself: a failure like any
        settle(CheckResult.failed("CancelledError: the check cancelled itself"))
    elif not flight.done():  # cancelled from outside (the loop is shutting down): record nothing
        if entry.flight is flight:
            entry.flight = None
        flight.cancel()


def _call_soon(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: Any
) -> None:
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # the loop closed while the check ran: nobody waits for the result
        pass


def _call_in_thread(
    fn: CheckFunction,
    context: contextvars.Context,
    loop: asyncio.AbstractEventLoop,
    settle: Callable[[CheckResult], None],
    cancel_box: list[Callable[[], object]],
    returned: threading.Event,
) -> None:
    try:
        value = context.run(fn)
        if inspect.isawaitable(value):  # a sync callable that returned a coroutine: await it there
            future = asyncio.run_coroutine_threadsafe(_awaited(value), loop)
            cancel_box.append(future.cancel)
            value = future.result()
        result = to_result(value)
    except BaseException as exc:  # a thread has nobody to raise to
        result = _error_result(exc)
    returned.set()
    _call_soon(loop, settle, result)


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value
