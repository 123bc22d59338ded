"""What the ops server remembers while it runs: recent events, breaker state history and health
samples. All of it is in memory and bounded; the reliability report reads it.

``EventLog`` is an event listener (``buttress.events``). It keeps the last ``capacity`` events as
redacted plain data, each with a sequence number ``seq`` so that a reader (the dashboard's live
stream) can ask for what came ``after`` the last one it saw, and it feeds a ``BreakerTimeline``.
The listener registered with ``buttress.events`` holds the log only weakly, so an app that is
dropped without being closed does not keep it alive.
"""

from __future__ import annotations

import itertools
import re
import threading
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from buttress import events
from buttress._redact import MASK, redact
from buttress.events import BreakerStateChanged, Event
from buttress.health._report import HealthReport

__all__ = ["BreakerStates", "BreakerTimeline", "EventLog", "HealthHistory", "redact_tree"]


_SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?$|pwd|secret|token$|api[_-]?key|authorization|credential|private[_-]?key",
    re.IGNORECASE,
)


def redact_tree(value: Any) -> Any:
    """``value`` as JSON-ready data: every string redacted, a string under a key named like a
    secret (``password``, ``api_key``...) masked whole, NaN and infinities as None."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, Mapping):
        return {
            str(key): MASK
            if isinstance(item, str) and item and _SECRET_KEY.search(str(key))
            else redact_tree(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_tree(item) for item in value]
    return redact(str(value))


class BreakerTimeline:
    """State changes per breaker (at most ``per_breaker`` kept each), to tell how long each state
    lasted over a period."""

    def __init__(self, *, per_breaker: int = 512) -> None:
        self._lock = threading.Lock()
        self._per_breaker = per_breaker
        self._changes: dict[str, deque[tuple[float, str, str]]] = {}

    def record(self, name: str, time: float, old: str, new: str) -> None:
        """Breaker ``name`` went from ``old`` to ``new`` at wall-clock ``time``."""
        with self._lock:
            changes = self._changes.get(name)
            if changes is None:
                changes = self._changes[name] = deque(maxlen=self._per_breaker)
            changes.append((time, old, new))

    def durations(self, name: str, current: str, start: float, end: float) -> dict[str, float]:
        """Seconds spent in each state between ``start`` and ``end`` (wall clock); ``current`` is
        the state now, which also covers the whole period when no change was recorded."""
        with self._lock:
            changes = [c for c in self._changes.get(name, ()) if c[0] < end]
        spent: dict[str, float] = {}
        if not changes:
            spent[current] = round(max(0.0, end - start), 3)
            return spent
        cursor, state = start, changes[0][1]
        for time, _old, new in changes:
            if time > cursor:
                spent[state] = spent.get(state, 0.0) + time - cursor
                cursor = time
            state = new
        spent[state] = spent.get(state, 0.0) + max(0.0, end - cursor)
        return {key: round(value, 3) for key, value in spent.items()}


class HealthHistory:
    """Per check, how many distinct results passed, warned and failed (a cached result seen twice
    counts once): the availability in the reliability report. With ``distinct=False`` every
    result recorded counts (the health monitor's runs, each one fresh)."""

    def __init__(self, *, distinct: bool = True) -> None:
        self._lock = threading.Lock()
        self._distinct = distinct
        self._last: dict[str, float] = {}
        self._counts: dict[str, dict[str, int]] = {}

    def __bool__(self) -> bool:
        return bool(self._counts)

    def record(self, report: HealthReport) -> None:
        """Count each result of ``report`` not counted before."""
        with self._lock:
            for name, outcome in report.checks.items():
                result = outcome.result
                if result.time <= 0 or (self._distinct and self._last.get(name) == result.time):
                    continue
                self._last[name] = result.time
                counts = self._counts.setdefault(name, {"pass": 0, "warn": 0, "fail": 0})
                counts[result.status.ietf] += 1

    def availability(self) -> dict[str, dict[str, Any]]:
        """Check name -> counts and ``availability`` (share of results that did not fail)."""
        with self._lock:
            table: dict[str, dict[str, Any]] = {
                name: dict(counts) for name, counts in self._counts.items()
            }
        for counts in table.values():
            total = counts["pass"] + counts["warn"] + counts["fail"]
            counts["samples"] = total
            counts["availability"] = round(1 - counts["fail"] / total, 6) if total else None
        return table


_NOT_CLOSED = frozenset({"open", "half_open", "forced_open"})
"""States in which a breaker refuses calls (DISABLED lets everything through, deliberately)."""


class _Track:
    __slots__ = ("since", "spent", "state", "trouble")

    def __init__(self, state: str, since: float) -> None:
        self.state, self.since = state, since
        self.spent: dict[str, float] = {}
        self.trouble: float | None = since if state in _NOT_CLOSED else None


class BreakerStates:
    """Seconds each breaker spent in each state since ``start`` (wall clock), kept as running
    totals from the ``breaker.state_changed`` events (memory stays constant however often a
    breaker flaps), and since when a breaker has refused calls without closing in between.

    ``listen()`` registers it for breaker events only; ``close()`` unregisters it.
    """

    KINDS = frozenset({BreakerStateChanged.kind})

    def __init__(self, start: float) -> None:
        self.start = start
        self._lock = threading.Lock()
        self._tracks: dict[str, _Track] = {}
        self._tap: _Tap | None = None

    def listen(self) -> None:
        """Start receiving breaker state changes from ``buttress.events``."""
        if self._tap is None:
            self._tap = _Tap(weakref.ref(self))
            events.add_listener(self._tap, kinds=self.KINDS)

    def close(self) -> None:
        """Stop receiving events (the totals so far are kept)."""
        if self._tap is not None:
            events.remove_listener(self._tap)
            self._tap = None

    def record(self, event: Event) -> None:
        """Account for one state change (other events are ignored)."""
        if not isinstance(event, BreakerStateChanged):
            return
        with self._lock:
            track = self._tracks.get(event.source)
            if track is None:
                track = self._tracks[event.source] = _Track(event.old, self.start)
            if event.time > track.since:
                track.spent[track.state] = track.spent.get(track.state, 0.0) + (
                    event.time - track.since
                )
                track.since = event.time
            track.state = event.new
            if event.new not in _NOT_CLOSED:
                track.trouble = None
            elif track.trouble is None:
                track.trouble = max(event.time, self.start)

    def durations(self, name: str, current: str, end: float) -> dict[str, float]:
        """Seconds in each state from ``start`` to ``end``; ``current`` (the state now) covers
        the whole period of a breaker that never changed state."""
        with self._lock:
            track = self._tracks.get(name)
            if track is None:
                return {current: round(max(0.0, end - self.start), 3)}
            spent = dict(track.spent)
            state, since = track.state, track.since
        if end > since:
            spent[state] = spent.get(state, 0.0) + end - since
        return {key: round(value, 3) for key, value in spent.items()}

    def refusing_since(self, name: str) -> float | None:
        """Since when ``name`` has been open, half-open or forced open without closing in
        between (None: closed or disabled now, or no change seen since ``start``)."""
        with self._lock:
            track = self._tracks.get(name)
            return None if track is None else track.trouble


class _Recorder(Protocol):
    def record(self, event: Event) -> None: ...


@dataclass(frozen=True, slots=True)
class _Tap:
    """The listener actually registered: forwards to its owner while that lives, then
    unregisters."""

    ref: weakref.ReferenceType[_Recorder]

    def __call__(self, event: Event) -> None:
        log = self.ref()
        if log is None:
            events.remove_listener(self)
        else:
            log.record(event)


class EventLog:
    """The last ``capacity`` events (default 500) as redacted dicts with a ``seq`` number."""

    def __init__(self, *, capacity: int = 500, timeline: BreakerTimeline | None = None) -> None:
        self.timeline = timeline if timeline is not None else BreakerTimeline()
        self._items: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._tap: _Tap | None = None

    def listen(self) -> None:
        """Start receiving events from ``buttress.events``."""
        if self._tap is None:
            self._tap = _Tap(weakref.ref(self))
            events.add_listener(self._tap)

    def close(self) -> None:
        """Stop receiving events."""
        if self._tap is not None:
            events.remove_listener(self._tap)
            self._tap = None

    def record(self, event: Event) -> None:
        """Keep ``event`` (redacted); a breaker state change also goes to the timeline."""
        data = redact_tree(event.to_dict())
        with self._lock:
            data["seq"] = next(self._seq)
            self._items.append(data)
        if isinstance(event, BreakerStateChanged):
            self.timeline.record(event.source, event.time, event.old, event.new)

    def recent(self, limit: int = 100, *, after: int = 0) -> list[dict[str, Any]]:
        """Up to ``limit`` events newer than sequence number ``after``, newest first."""
        with self._lock:
            items = [item for item in reversed(self._items) if item["seq"] > after]
        return items[:limit]
