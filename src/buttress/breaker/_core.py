"""The circuit breaker's state machine: decisions only, with ``now`` passed in.

It never reads a clock, sleeps, logs or emits; state changes are queued in ``pending`` for the
shell to announce (outside the lock, by whichever thread looks next). Successes in the CLOSED
state take a sequence number from an ``itertools.count`` (atomic under the GIL) and nothing
else, so the hot path has no lock; everything else happens under ``_lock``.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from buttress import _options as opt
from buttress.breaker._state import BreakerOptions, BreakerSnapshot, BreakerState
from buttress.breaker._window import CountWindow, TimeWindow, Window
from buttress.errors import CircuitOpenError

__all__ = ["BreakerCore", "Transition"]

CLOSED = BreakerState.CLOSED
OPEN = BreakerState.OPEN
HALF_OPEN = BreakerState.HALF_OPEN
FORCED_OPEN = BreakerState.FORCED_OPEN
DISABLED = BreakerState.DISABLED

NO_PERMIT = 0


def peek(counter: itertools.count[int]) -> int:
    """The next value of an ``itertools.count`` without taking it."""
    return int(repr(counter)[6:-1])


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change for the shell to announce."""

    old: BreakerState
    new: BreakerState
    reason: str


class BreakerCore:
    """State, window and trial permits of one breaker."""

    __slots__ = (
        "_base_seq",
        "_count_ignored",
        "_count_rejected",
        "_failures",
        "_fast",
        "_generation",
        "_ignore",
        "_is_failure",
        "_lock",
        "_open_delays",
        "_open_until",
        "_openings",
        "_permit_ids",
        "_permits",
        "_reject_until",
        "_rng",
        "_seq",
        "_since",
        "_slow",
        "_state",
        "_streak",
        "_streak_seq",
        "_trial_ok",
        "_trial_timeout",
        "_wall_offset",
        "_window",
        "name",
        "options",
        "pending",
    )

    def __init__(self, name: str, options: BreakerOptions, now: float, wall: float) -> None:
        # State-change times are shown as wall-clock times; derive them from ``now``.
        self._wall_offset = wall - now
        self.pending: list[Transition] = []
        self.name = name
        self.options = options
        self._is_failure = opt.exception_filter("on", options.on)
        self._ignore = (
            None if options.ignore == () else opt.exception_filter("ignore", options.ignore)
        )
        self._lock = threading.Lock()
        self._seq = itertools.count(1)  # successes and failures, in the order they were recorded
        self._count_rejected = itertools.count(1)
        self._count_ignored = itertools.count(1)
        self._failures = 0
        self._slow = 0
        self._window: Window = (
            CountWindow(options.window)
            if options.window_seconds is None
            else TimeWindow(options.window_seconds)
        )
        self._base_seq = 0
        self._window.clear(0, now)
        self._streak = 0
        self._streak_seq = 0
        self._state = CLOSED
        self._since = wall
        self._open_until = 0.0
        # _open_until while OPEN, else -inf: the shells' one-comparison rejection test.
        self._reject_until = -math.inf
        self._openings = 0
        self._open_delays: Iterator[float] | None = None
        self._rng: random.Random | None = None  # made on first use: a Random holds 2.5 KiB
        self._permits: dict[int, float] = {}
        self._permit_ids = itertools.count(1)
        self._trial_ok = 0
        self._trial_timeout = options.open_for
        self._generation = 0
        self._fast = False
        self._refresh_fast()

    # -- admission ---------------------------------------------------------------------------

    def _refresh_fast(self) -> None:
        o = self.options
        self._fast = (
            self._state is CLOSED
            and o.window_seconds is None
            and o.slow_call_duration is None
            and o.on_result is None
        )

    def admit(self, now: float) -> int:
        """Let a call in, returning its trial permit (or NO_PERMIT); or raise CircuitOpenError."""
        state = self._state
        if state is CLOSED or state is DISABLED:
            return NO_PERMIT
        if state is OPEN and now < self._open_until:  # the common rejection, without the lock
            next(self._count_rejected)
            raise CircuitOpenError(self.name, self._open_until - now)
        with self._lock:
            if self._state is OPEN and now >= self._open_until:
                self._move(HALF_OPEN, f"open for {self._trial_timeout:g}s elapsed", now)
            state = self._state
            if state is CLOSED or state is DISABLED:
                return NO_PERMIT
            if state is HALF_OPEN:
                if any(now - t >= self._trial_timeout for t in self._permits.values()):
                    reason = f"a trial call did not report within {self._trial_timeout:g}s"
                    self._open(now, reason)
                elif len(self._permits) < self.options.half_open_calls:
                    permit = next(self._permit_ids)
                    self._permits[permit] = now
                    return permit
            next(self._count_rejected)
            retry_after = self._retry_after(now)
        raise CircuitOpenError(self.name, retry_after)

    def observe(self, now: float) -> BreakerState:
        """The state at ``now`` (an OPEN breaker whose time is up becomes HALF_OPEN)."""
        if self._state is OPEN and now >= self._open_until:
            with self._lock:
                if self._state is OPEN and now >= self._open_until:
                    self._move(HALF_OPEN, f"open for {self._trial_timeout:g}s elapsed", now)
        return self._state

    def _retry_after(self, now: float) -> float | None:
        if self._state is OPEN:
            return max(0.0, self._open_until - now)
        if self._state is HALF_OPEN and self._permits:
            return max(0.0, min(self._permits.values()) + self._trial_timeout - now)
        return None

    # -- recording ---------------------------------------------------------------------------

    def classify(self, exc: BaseException) -> int:
        """0: not counted (cancellation), 1: ignored, 2: success, 3: failure."""
        if not isinstance(exc, Exception):
            return 0
        if self._ignore is not None and self._ignore(exc):
            return 1
        return 3 if self._is_failure(exc) else 2

    def record(self, permit: int, failed: bool, slow: bool, now: float) -> None:
        """Record a finished call (its permit, whether it failed or was slow) and decide."""
        if permit == NO_PERMIT and not failed and not slow:
            next(self._seq)
            return
        with self._lock:
            seq = next(self._seq)
            self._failures += failed
            self._slow += slow
            if permit != NO_PERMIT:
                self._record_trial(permit, failed or slow, now)
                return
            self._window.add(seq, now, failed, slow)
            if failed:
                self._streak = self._streak + 1 if self._streak_seq == seq - 1 else 1
                self._streak_seq = seq
            if self._state is CLOSED:  # else a late report from an earlier state, or disabled
                self._evaluate(seq, now)

    def record_ignored(self, permit: int) -> None:
        """Count an ignored outcome; a trial's permit is given back."""
        next(self._count_ignored)
        if permit != NO_PERMIT:
            with self._lock:
                self._permits.pop(permit, None)

    def rotate(self, now: float) -> None:
        """Keep a time window's buckets current (call when ``now >= window.bucket_end``)."""
        with self._lock:
            self._window.rotate(peek(self._seq) - 1, now)

    def _evaluate(self, seq: int, now: float) -> None:
        o = self.options
        if o.consecutive_failures is not None and self._streak >= o.consecutive_failures:
            self._open(now, f"{self._streak} consecutive failures")
            return
        calls, failures, slow = self._window.counts(seq, now)
        if calls < o.minimum_calls:
            return
        if failures and failures / calls >= o.failure_rate:
            rate = failures / calls
            self._open(now, f"failure rate {rate:.2f} >= {o.failure_rate:g} over {calls} calls")
        elif slow and slow / calls >= o.slow_call_rate:
            rate = slow / calls
            self._open(now, f"slow-call rate {rate:.2f} >= {o.slow_call_rate:g} over {calls} calls")

    def _record_trial(self, permit: int, failed: bool, now: float) -> None:
        if self._permits.pop(permit, None) is None or self._state is not HALF_OPEN:
            return  # the trial expired, or the state moved on without it
        if failed:
            self._open(now, "a trial call failed")
            return
        self._trial_ok += 1
        if self._trial_ok >= self.options.success_threshold:
            self._close(now, f"{self._trial_ok} trial call(s) succeeded")

    # -- transitions (under the lock) -----------------------------------------------------------

    def _move(self, new: BreakerState, reason: str, now: float) -> None:
        self.pending.append(Transition(self._state, new, reason))
        self._state = new
        self._reject_until = self._open_until if new is OPEN else -math.inf
        self._since = now + self._wall_offset
        self._generation += 1
        self._permits.clear()
        self._trial_ok = 0
        self._refresh_fast()

    def _open(self, now: float, reason: str) -> None:
        o = self.options
        duration = o.open_for
        if o.open_backoff is not None:
            if self._open_delays is None:
                if self._rng is None:
                    self._rng = random.Random()
                self._open_delays = o.open_backoff.delays(self._rng)
            duration = max(o.open_for, next(self._open_delays))
        self._open_until = now + duration
        self._trial_timeout = duration
        self._openings += 1
        self._move(OPEN, reason, now)

    def _close(self, now: float, reason: str) -> None:
        self._clear_window(now)
        self._open_delays = None
        self._move(CLOSED, reason, now)

    def _clear_window(self, now: float) -> None:
        self._base_seq = peek(self._seq) - 1
        self._window.clear(self._base_seq, now)
        self._streak = 0

    def take_pending(self) -> list[Transition]:
        """Hand the queued transitions to the caller, once."""
        with self._lock:
            pending, self.pending = self.pending, []
        return pending

    # -- manual control --------------------------------------------------------------------------

    def force(self, state: BreakerState, reason: str, now: float) -> None:
        """Move to ``state`` by hand (reset, trip, disable); nothing is queued if already there."""
        with self._lock:
            if state is CLOSED:
                self._clear_window(now)
                self._open_delays = None
            if self._state is state:
                return
            if state is FORCED_OPEN:
                self._openings += 1
            self._move(state, reason, now)

    def snapshot_at(self, now: float) -> BreakerSnapshot:
        """Counts, rates and state at ``now``."""
        self.observe(now)
        with self._lock:
            taken = peek(self._seq) - 1
            calls, failures, slow = self._window.counts(max(taken, self._base_seq), now)
            ignored = peek(self._count_ignored) - 1
            return BreakerSnapshot(
                name=self.name,
                state=self._state,
                since=self._since,
                retry_after=self._retry_after(now) if self._state is OPEN else None,
                failure_rate=failures / calls if calls else 0.0,
                slow_rate=slow / calls if calls else 0.0,
                window_calls=calls,
                window_failures=failures,
                window_slow=slow,
                calls=taken + ignored,
                successes=taken - self._failures,
                failures=self._failures,
                slow=self._slow,
                rejected=peek(self._count_rejected) - 1,
                ignored=ignored,
                openings=self._openings,
            )
