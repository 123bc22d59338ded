"""``SharedCircuitBreaker``: what ``CircuitBreaker(..., shared=store)`` builds.

The hot path is the local breaker's, untouched: calls are judged by this process's core and
its cached copy of the fleet state; no call waits for the network except a HALF_OPEN trial
(one round trip to take a fleet-wide permit, and one to report the outcome).

The process's sync thread (``_sync.SYNCER``; started by the first shared object, documented on
``CircuitBreaker``) runs ``sync`` every ``min(sync_interval, staleness)`` seconds. Bad news is
flushed sooner: a failed or slow call makes the breaker due ``_QUICK_GAP`` after its last sync
(a bucket of ``_QUICK_BURST`` such quick flushes, refilled at ``_QUICK_RATE`` per second, bounds
the extra load a steady trickle of failures puts on the store), and a local opening makes it
due at once (the first process to know tells the fleet's window). The caller only sets a
deadline and an event: the flush itself runs on the sync thread. On a Redis store a sync is
one call of ``_lua/breaker.lua``: it adds this process's deltas (calls, failures, slow calls
since the last sync) to the fleet window, evaluates it with the breaker's own
``failure_rate``, ``minimum_calls`` and ``slow_call_rate``, opens the breaker for everyone on
the server's clock and publishes the change, and returns the fleet state, which is adopted
when its generation is new to us. The process's pub/sub thread hands every published change
to ``receive``, which adopts it on arrival (no round trip); so the cached state is usually a
millisecond old and never older than ``staleness`` (1 s by default).

The fleet window. A time window (``window_seconds``) is ten buckets of server time. A count
window (``window=N``) is the newest N calls of the fleet, taken from the newest flushes (each
process's deltas of one sync, in arrival order, none older than 10 s); a flush is sent as two
parts, the calls before its first failed or slow call and the rest, so that the newest calls
are the bad ones, and of the oldest flush the window reaches only a proportional share counts.
Outcomes count from the moment they are flushed; the deltas gathered while the store is down
are dropped (old news must not open a recovered fleet). ``open_backoff`` and
``consecutive_failures`` stay local decisions, and a local opening stays local: the fleet opens
on the fleet's numbers, so one process with a bad network does not stop a healthy fleet.

Any other ``Store`` (SQLite: the processes of one host) shares the state, not the window: a
local opening, ``reset``, ``trip`` and ``disable`` are written under ``breaker:<name>`` with the
open-until as wall time, read back by every process each sync, and an OPEN breaker stays open
across a restart. Half-open permits are then per process.

When the store fails the breaker carries on alone (local mode), emits ``FleetStoreDegraded``,
reports ``degraded=True`` in its snapshot (``degraded_reason`` says why), and rejoins
(``FleetStoreRestored``) at the next sync that succeeds. No call ever fails because the store
failed.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import threading
import time
from typing import Any

from buttress._options import Duration, duration
from buttress.breaker import BreakerSnapshot, BreakerState, CircuitBreaker
from buttress.breaker._core import NO_PERMIT, peek
from buttress.errors import CircuitOpenError, StoreError
from buttress.fleet._events import FleetStoreDegraded, FleetStoreRestored, announce
from buttress.fleet._sync import SYNCER
from buttress.stores import ScriptStore, Store, load_script

__all__ = ["SharedCircuitBreaker"]

_OPEN = BreakerState.OPEN
_CLOSED = BreakerState.CLOSED
_QUICK_GAP = 0.001
"""Seconds between two flushes that failures ask for, while quick flushes are left."""
_QUICK_BURST = 20
_QUICK_RATE = 10.0
"""Quick flushes: a bucket of ``_QUICK_BURST``, refilled by ``_QUICK_RATE`` per second."""
_BUCKET = 0.1
_COUNT_SPAN = 100  # buckets of _BUCKET: a count window looks back at most 10 s
_STATES = {s.value: s for s in BreakerState}


class SharedCircuitBreaker(CircuitBreaker):
    """A ``CircuitBreaker`` whose state is shared through ``store`` (see the module docstring)."""

    __slots__ = (
        "_apply_lock",
        "_degraded",
        "_deny_until",
        "_error",
        "_fleet_open",
        "_flushed",
        "_gen",
        "_interval",
        "_keys",
        "_kv_until",
        "_last_sync",
        "_mark",
        "_quick",
        "_script",
        "_sync_args",
        "_sync_lock",
        "_timer_due",
        "channel",
        "due",
        "store",
    )

    def __init__(
        self,
        name: str,
        *,
        shared: Store | None = None,
        sync_interval: Duration = 0.25,
        staleness: Duration = 1.0,
        **options: Any,
    ) -> None:
        super().__init__(name, **options)
        if shared is None:
            raise TypeError("SharedCircuitBreaker needs shared=<a Store>")
        self.store = shared
        self._interval = min(
            duration("sync_interval", sync_interval), duration("staleness", staleness)
        )
        self._sync_lock = threading.Lock()
        self._apply_lock = threading.Lock()
        self._degraded = False
        self._error: str | None = None
        self._fleet_open = False
        self._deny_until = -math.inf
        self._gen = -1
        self._flushed = (0, 0, 0)
        self._mark = 0
        self._quick = float(_QUICK_BURST)
        self._last_sync = -math.inf
        self._timer_due = 0.0
        self._kv_until = math.nan
        self.due = 0.0
        layout = shared.layout
        base = f"breaker:{name}"
        window = "flushes" if self.options.window_seconds is None else "buckets"
        self._keys = [
            layout.key(base, "state"),
            layout.key(base, window),
            layout.key(base, "permits"),
        ]
        self._script = (
            load_script("breaker", package="buttress.fleet")
            if isinstance(shared, ScriptStore)
            else None
        )
        self.channel = layout.key(base, "events") if self._script is not None else None
        o = self.options
        counted = o.window_seconds is None
        width = _BUCKET if counted else (o.window_seconds or 1.0) / 10
        self._sync_args = (
            max(1, round(width * 1000)),
            _COUNT_SPAN if counted else 10,
            o.window if counted else 0,
            repr(o.failure_rate),
            o.minimum_calls,
            repr(o.slow_call_rate),
            max(1, round(o.open_for * 1000)),
        )
        self.due = time.monotonic() + self._interval  # the sync below is the first
        SYNCER.add(self)  # listening first: a change published from now on reaches us
        self.sync()  # join the fleet's current state before the first call

    @property
    def degraded_reason(self) -> str | None:
        """Why the breaker runs in local mode (the store's error, URL masked), or None."""
        return self._error if self._degraded else None

    # -- the fleet threads' side ----------------------------------------------------------------

    def pubsub_client(self) -> Any | None:
        """The redis-py client to subscribe with (Redis stores only)."""
        return getattr(self.store, "client", None) if self._script is not None else None

    def receive(self, data: bytes) -> None:
        """A state change published by the script (``gen:state:ms left``): adopt it now."""
        try:
            gen, state, left = data.decode().split(":")
            self._apply([state, int(left), int(gen)], live=True)
        except Exception:  # a stranger's message on our channel: the next sync corrects us
            return

    def sync(self) -> None:
        """Flush deltas, refresh the fleet state; never raises (the store failing degrades)."""
        with self._sync_lock:
            now = time.monotonic()
            refill = (now - self._last_sync) * _QUICK_RATE
            self._quick = min(float(_QUICK_BURST), self._quick + refill)
            if now < self._timer_due:  # nudged: an early flush spends one of the quick ones
                self._quick -= 1
            self._last_sync = now
            self._timer_due = self.due = now + self._interval
            with self._lock:  # calls and failures read together (failures count under it)
                calls, failures, slow = peek(self._seq) - 1, self._failures, self._slow
            last, self._flushed = self._flushed, (calls, failures, slow)
            mark = self._mark
            head = mark - last[0] - 1 if last[0] < mark <= calls else 0
            try:
                if self._script is not None:
                    deltas = (calls - last[0], failures - last[1], slow - last[2])
                    self._apply(self._run("sync", *deltas, *self._sync_args, head))
                else:
                    self._sync_kv()
            except StoreError as exc:
                self._fail(exc)
            except Exception as exc:  # a bug must not kill the sync thread
                self._fail(exc)

    def _run(self, op: str, *args: object) -> list[Any]:
        script, runner = self._script, self.store
        assert script is not None
        assert isinstance(runner, ScriptStore)  # checked once: _script is set only then
        reply = runner.run_script(script, self._keys, (op, self.channel, *args))
        if self._degraded:
            self._degraded = False
            self._gen = -1  # rejoin: adopt whatever the fleet says now (Redis may have restarted)
            announce(
                FleetStoreRestored(source=self.name, time=self._clock.time(), store=self.store.url)
            )
        return list(reply)

    def _fail(self, exc: BaseException) -> None:
        self._error = str(exc) if isinstance(exc, StoreError) else repr(exc)
        if not self._degraded:
            self._degraded = True
            self._fleet_open = False
            announce(
                FleetStoreDegraded(
                    source=self.name,
                    time=self._clock.time(),
                    store=self.store.url,
                    error=self._error,
                )
            )

    def _apply(self, reply: list[Any], *, live: bool = False) -> None:
        """Adopt the fleet state of a script reply (or a message) if its generation is new."""
        raw, left_ms, gen = reply[0], int(reply[1]), int(reply[2])
        state = _STATES[raw.decode() if isinstance(raw, bytes) else str(raw)]
        with self._apply_lock:
            if gen <= self._gen:
                return
            joining, self._gen = self._gen < 0, gen
            if joining and state is _CLOSED and not live:
                return  # joining never closes anything
            self._adopt(state, left_ms / 1000.0, "fleet")
        if self.pending:
            self._announce()

    def _adopt(self, state: BreakerState, left: float, reason: str) -> None:
        now = self._clock.monotonic()
        self._fleet_open = state is _OPEN
        self._deny_until = -math.inf
        if state is _OPEN:
            until = now + left
            with self._lock:
                if self._state is not _OPEN or abs(self._open_until - until) > 0.01:
                    self._open_until = until
                    self._trial_timeout = self.options.open_for
                    if self._state is _OPEN:
                        self._reject_until = until
                    else:
                        self._openings += 1
                        self._move(_OPEN, f"opened by the {reason}", now)
        elif state is not self._state:
            self.force(state, f"{state.value} by the {reason}", now)

    # -- SQLite and other stores without scripts --------------------------------------------

    def _sync_kv(self) -> None:
        raw = self.store.get(f"breaker:{self.name}")
        if self._degraded:
            self._degraded = False
            announce(
                FleetStoreRestored(source=self.name, time=self._clock.time(), store=self.store.url)
            )
        if raw is not None:
            name, until, gen = raw.decode().split("|")
            if int(gen) != self._gen:
                self._gen = int(gen)
                state, left = _STATES[name], float(until) - self._clock.time()
                if state is not _OPEN or left > 0:
                    self._adopt(state, left, "fleet")
                    self._kv_until = self._open_until
                    if self.pending:
                        self._announce()
                self._fleet_open = False  # half-open permits stay per process here
                return
        if self._state is _OPEN and self._open_until != self._kv_until:
            # A local opening: persist it for the host's other processes and for restarts.
            self._kv_until = self._open_until
            self._write_kv(_OPEN, self._open_until - self._clock.monotonic())

    def _write_kv(self, state: BreakerState, left: float) -> None:
        self._gen = secrets.randbits(48)
        until = self._clock.time() + left
        self.store.set(f"breaker:{self.name}", f"{state.value}|{until!r}|{self._gen}")

    # -- half-open trials go through the fleet ------------------------------------------------

    def _enter(self, now: float) -> tuple[int, float]:
        if now < self._deny_until:
            next(self._count_rejected)
            raise CircuitOpenError(self.name, self._deny_until - now)
        permit, start = super()._enter(now)
        if permit == NO_PERMIT or not self._fleet_open or self._degraded:
            return permit, start
        try:
            reply = self._run("permit", self.options.half_open_calls, self._sync_args[6])
        except StoreError as exc:
            self._fail(exc)
            return permit, start  # the store is down: probe on our own
        if int(reply[3]) == 1:
            return permit, start
        with self._lock:
            self._permits.pop(permit, None)
        self._deny_until = now + self._interval  # the fleet's probes are out: wait for news
        next(self._count_rejected)
        raise CircuitOpenError(self.name, self._interval)

    def _settle(self, failed: bool, permit: int, start: float) -> None:
        was = self._state
        if failed and self._mark <= self._flushed[0]:
            # Where the bad news starts (before the call is counted: a flush in between must
            # not see the failure without its mark): the sequence number it is about to take.
            self._mark = peek(self._seq)
        super()._settle(failed, permit, start)
        if permit != NO_PERMIT and self._fleet_open and not self._degraded:
            now = self._clock.monotonic()
            bad = failed or (self._slow_after is not None and now - start >= self._slow_after)
            o = self.options
            try:
                self._apply(self._run("trial", int(bad), o.success_threshold, self._sync_args[6]))
            except StoreError as exc:
                self._fail(exc)
            return
        if not failed and (
            self._slow_after is None or self._clock.monotonic() - start < self._slow_after
        ):
            return
        # A failed or slow call: mark a slow one's place too, and flush the news soon.
        if self._mark <= self._flushed[0]:
            self._mark = peek(self._seq) - 1
        if self._degraded:
            return
        if was is _CLOSED and self._state is not _CLOSED:
            SYNCER.nudge(self)  # a local opening: let the fleet judge these numbers now
        elif self._quick >= 1:
            SYNCER.nudge_at(self, self._last_sync + _QUICK_GAP)

    # -- manual control reaches the fleet -------------------------------------------------------

    def _force(self, state: BreakerState, reason: str) -> None:
        super()._force(state, reason)
        try:
            if self._script is not None:
                self._apply(self._run("force", state.value))
            else:
                self._write_kv(state, 0.0)
        except StoreError as exc:
            self._fail(exc)

    def snapshot(self) -> BreakerSnapshot:
        """The local snapshot, with ``degraded`` set while the store is unreachable."""
        return dataclasses.replace(super().snapshot(), degraded=self._degraded)

    def close(self) -> None:
        """Stop syncing (the store stays open: it is the caller's)."""
        SYNCER.remove(self)
