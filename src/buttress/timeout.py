"""``Timeout``: bound how long a call may run.

asyncio calls are cancelled at the deadline. A per-call ``loop.call_at`` (or ``asyncio.timeout``)
costs more than the whole pipeline budget, so each ``Timeout`` keeps, per event loop, a FIFO of
in-flight calls and at most one pending timer. One ``Timeout`` has one duration and the clock is
monotonic, so deadlines arrive in increasing order and the head of the FIFO is always the
earliest: the timer only ever needs to watch the head.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
import weakref
from _thread import get_ident
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

from buttress import _options
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._deadline import DEADLINE
from buttress._policy import Policy
from buttress.errors import ConfigError, TimeoutError
from buttress.events import TimeoutExpired, emit, wants

__all__ = ["Timeout", "TimeoutOptions", "TimeoutSnapshot"]

P = ParamSpec("P")
T = TypeVar("T")

# Once the head's deadline is reached the timer re-arms no sooner than this: it bounds how late
# an expiry can be (and how often the timer can run) when deadlines are packed close together.
RESOLUTION = 0.001

# An entry is a list [deadline, task, state]: cheaper to build than an object. The hot path
# spells the states as literals (0 running, 1 done, 2 expired): a global lookup costs more.
_RUNNING = 0
_DONE = 1
_EXPIRED = 2

_get_deadline = DEADLINE.get
_set_deadline = DEADLINE.set
_reset_deadline = DEADLINE.reset

if sys.version_info < (3, 12):  # pragma: no branch
    # On 3.11 ``asyncio.current_task()`` is Python code around ``get_running_loop()``, which makes
    # a getpid() system call on every call (~0.3 us here, more than the rest of a Timeout). The
    # loop's task table (the dict ``current_task`` reads) is found from a per-thread cache instead.
    _current_tasks: dict[Any, asyncio.Task[Any]] | None = getattr(
        asyncio.tasks, "_current_tasks", None
    )
    _task_of = None if _current_tasks is None else _current_tasks.get
else:  # pragma: no cover
    _task_of = None


@dataclass(frozen=True, slots=True)
class TimeoutOptions:
    """A timeout's options: ``seconds`` and whether sync calls run in a worker ``thread``."""

    seconds: float
    thread: bool = False


@dataclass(frozen=True, slots=True)
class TimeoutSnapshot:
    """A timeout's counters: calls that ran past the deadline, and asyncio calls in flight."""

    name: str
    seconds: float
    timeouts: int
    tracked: int


class _Lane:
    """The in-flight asyncio calls of one ``Timeout`` on one event loop, and their one timer."""

    __slots__ = ("armed", "entries", "owner")

    def __init__(self, owner: Timeout) -> None:
        self.owner = owner
        self.entries: deque[list[Any]] = deque()
        self.armed = False

    def arm(self, when: float) -> None:
        self.armed = True
        self.owner._clock.call_at(when, self.fire)

    def fire(self) -> None:
        self.armed = False
        owner = self.owner
        entries = self.entries
        now = owner._clock.monotonic()
        while entries:
            entry = entries[0]
            if entry[2] != _RUNNING:
                entries.popleft()
            elif entry[0] <= now:
                # Popped now, not when the call exits: a call that ignores its cancellation
                # must not hold back the entries queued behind it.
                entries.popleft()
                entry[2] = _EXPIRED
                entry[1].cancel()
                owner._expired()
            else:
                self.arm(max(entry[0], now + RESOLUTION))
                return


class Timeout(Policy):
    """Fail a call that runs longer than ``seconds`` with ``buttress.TimeoutError``.

    ``Timeout(seconds, *, thread=False, name="timeout", clock=None)``; ``seconds`` is a float or
    a ``timedelta``, > 0.

    asyncio (``acall``): the call is cancelled at its deadline and ``TimeoutError`` (also the
    builtin ``TimeoutError``) is raised in its place. Precision: a call is never cancelled before
    its deadline and at most about 1 ms (``RESOLUTION``), plus the event loop's own latency,
    after it. An outer cancellation passes through unchanged; so does a cancellation that is
    still pending when the deadline passes (an outer timeout expiring at the same moment, a task
    group shutting down), which then wins over the ``TimeoutError``. If the call swallows the
    cancellation and returns, its result is returned. Bookkeeping per call is one small list in
    a FIFO per event loop; finished calls leave it at once unless they finished behind a slower
    call still running, so it holds at most the calls started within one ``seconds`` period.

    sync (``call``): Python cannot interrupt a running thread, so the deadline is propagated
    (inner code reads it with ``buttress.remaining()``) and, if the call overran, its result is
    discarded and ``TimeoutError`` is raised after the fact; an error the call raised itself is
    re-raised as is. With ``thread=True`` the call runs in a new daemon thread and the caller gets
    ``TimeoutError`` at the deadline, but the thread is abandoned, not stopped: the work keeps
    running to its end, may still have side effects, and holds its resources until then.

    Both ways set the deadline seen by ``buttress.remaining()`` (and by ``Retry``, which never
    sleeps past it) when it is tighter than an enclosing one.
    """

    __slots__ = (
        "_clock",
        "_lanes",
        "_lanes_lock",
        "_last",
        "_monotonic",
        "_seconds",
        "name",
        "options",
        "timeouts",
    )

    options: TimeoutOptions

    def __init__(
        self,
        seconds: float | timedelta,
        *,
        thread: bool = False,
        name: str = "timeout",
        clock: Clock | None = None,
    ) -> None:
        seconds = _options.duration("seconds", seconds)
        if not isinstance(thread, bool):
            raise ConfigError("thread", thread, "must be True or False")
        self.name = name
        self.options = TimeoutOptions(seconds, thread)
        self.timeouts = 0
        self._seconds = seconds
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._monotonic = self._clock.monotonic
        # (thread id, loop, lane) of the last call: one tuple, so that another thread never sees
        # a torn triple. Other loops' lanes live in a weak dict so closed loops are forgotten.
        self._last: tuple[int | None, Any, _Lane] = (None, None, _Lane(self))
        self._lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lane] = (
            weakref.WeakKeyDictionary()
        )
        self._lanes_lock = threading.Lock()

    def snapshot(self) -> TimeoutSnapshot:
        """The counters: ``timeouts`` so far and ``tracked`` asyncio entries held right now."""
        with self._lanes_lock:
            tracked = sum(len(lane.entries) for lane in list(self._lanes.values()))
        return TimeoutSnapshot(self.name, self._seconds, self.timeouts, tracked)

    def _expired(self) -> None:
        self.timeouts += 1
        if wants(TimeoutExpired):
            emit(TimeoutExpired(self.name, self._clock.time(), self._seconds))

    def _lane(self, tid: int | None) -> tuple[Any, _Lane]:
        """The running loop and its lane, remembered for the next call from thread ``tid``."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last[1] is loop:
            lane: _Lane = last[2]
        else:
            with self._lanes_lock:
                lane = self._lanes.get(loop) or self._lanes.setdefault(loop, _Lane(self))
        if tid is not None and getattr(loop, "_thread_id", None) != tid:
            tid = None  # a loop without ``_thread_id`` (uvloop) always takes this path
        self._last = (tid, loop, lane)
        return loop, lane

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)``; cancel it and raise ``TimeoutError`` at the deadline."""
        if _task_of is not None:
            # The cached loop is the running one if it runs on this very thread (a thread runs
            # one loop at a time); asyncio's loops set ``_thread_id`` while they run.
            tid = get_ident()
            cached_tid, loop, lane = self._last
            if cached_tid != tid or loop._thread_id != tid:
                loop, lane = self._lane(tid)
            task = _task_of(loop)
        else:  # pragma: no cover
            lane = self._lane(None)[1]
            task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Timeout.acall must run inside an asyncio task")
        clock = self._clock
        deadline = self._monotonic() + self._seconds
        entry: list[Any] = [deadline, task, 0]  # state: 0 running, 1 done, 2 expired
        entries = lane.entries
        entries.append(entry)
        token = None
        try:
            if not lane.armed:
                lane.arm(deadline)
            current = _get_deadline()
            if current is None or (
                deadline < current[0] if current[1] is clock else _tighter(deadline, clock, current)
            ):
                token = _set_deadline((deadline, clock))
            return await fn(*args, **kwargs)
        except asyncio.CancelledError:
            if entry[2] == 2:
                entry[2] = 1
                # Only when no other cancellation is pending (an outer timeout expiring at the
                # same time, a task group shutting down): that one must keep propagating.
                if task.uncancel() == 0:
                    raise TimeoutError(self.name, self._seconds) from None
            raise
        finally:
            if token is not None:
                _reset_deadline(token)
            if entry[2] == 2:
                # The call swallowed our cancellation: keep the task's cancel count balanced.
                task.uncancel()
            entry[2] = 1
            if entries and entries[0] is entry:
                entries.popleft()
                while entries and entries[0][2] == 1:
                    entries.popleft()
            else:
                # Waits behind a slower call until the timer or that call pops it.
                entry[1] = None

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)``; raise ``TimeoutError`` if it overran (see the class doc)."""
        if self.options.thread:
            return self._call_in_thread(fn, *args, **kwargs)
        clock = self._clock
        deadline = clock.monotonic() + self._seconds
        current = DEADLINE.get()
        token = (
            DEADLINE.set((deadline, clock))
            if current is None or _tighter(deadline, clock, current)
            else None
        )
        try:
            result = fn(*args, **kwargs)
        finally:
            if token is not None:
                DEADLINE.reset(token)
        if clock.monotonic() >= deadline:
            self._expired()
            raise TimeoutError(self.name, self._seconds)
        return result

    def _call_in_thread(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        clock = self._clock
        deadline = clock.monotonic() + self._seconds
        context = contextvars.copy_context()
        current = context.run(DEADLINE.get)
        if current is None or _tighter(deadline, clock, current):
            context.run(DEADLINE.set, (deadline, clock))
        done = threading.Event()
        outcome: list[tuple[bool, Any]] = []

        def work() -> None:
            try:
                outcome.append((True, context.run(fn, *args, **kwargs)))
            except BaseException as exc:
                outcome.append((False, exc))
            finally:
                done.set()

        worker = threading.Thread(target=work, name=f"buttress-timeout-{self.name}", daemon=True)
        worker.start()
        if not clock.wait(done, max(0.0, deadline - clock.monotonic())):
            self._expired()
            raise TimeoutError(self.name, self._seconds)
        ok, value = outcome.pop()
        if ok:
            result: T = value
            return result
        raise value


def _tighter(deadline: float, clock: Clock, current: tuple[float, Clock]) -> bool:
    """Whether ``deadline`` on ``clock`` comes before the enclosing ``current`` deadline."""
    other_deadline, other_clock = current
    if other_clock is clock:
        return deadline < other_deadline
    # Different clocks: compare what is left on each.
    return deadline - clock.monotonic() < other_deadline - other_clock.monotonic()
