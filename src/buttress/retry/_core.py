"""The decision half of Retry: what one call has seen, and what to do after a failed attempt.

``RetryCore._plan`` is the decision: it takes ``now`` and the time left before an outer deadline,
never sleeps or reads the retry's clock, and its only effects are the call's own counts and,
asked last, the budget's withdrawal. ``_next`` wraps it with classification, hints, counting,
notes and events. ``Retry`` (in ``_retry.py``) adds the constructor and the sync and async shells,
which only call, sleep and ask ``_next``.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from buttress._clock import Clock
from buttress._deadline import DEADLINE
from buttress._policy import Policy
from buttress.events import RetryExhausted, RetryScheduled, emit, wants
from buttress.retry._backoff import Backoff
from buttress.retry._budget import RetryBudget
from buttress.retry._dead import DeadLetterSink
from buttress.retry._hints import error_hint, result_hint
from buttress.retry._rules import Matcher, RetryOptions

__all__ = ["RetryCore", "RetryStats", "RetryableResult"]


class RetryableResult(Exception):
    """Stands for a result that ``on_result`` rejected, in events that carry an error."""

    def __init__(self, result: object) -> None:
        self.result = result
        text = repr(result)
        super().__init__(f"on_result rejected {text[:200]}")


@dataclass(frozen=True, slots=True)
class RetryStats:
    """Counters of a Retry: ``calls`` = ``successes`` + ``exhausted`` + ``failures`` (errors that
    were not retried), ``attempts`` = ``calls`` + ``retries`` (in-flight calls aside)."""

    calls: int
    attempts: int
    retries: int
    successes: int
    exhausted: int
    failures: int


class _CallState:
    """What one call has seen so far: created on its first failure, never on the hot path."""

    __slots__ = ("attempts", "counts", "delays", "error", "result", "started", "stop")

    def __init__(
        self, started: float, slots: int, error: BaseException | None, result: object
    ) -> None:
        self.started = started
        self.attempts = 1
        self.error = error
        self.result = result
        self.counts = [0] * slots
        self.delays: list[Iterator[float] | None] = [None] * slots
        self.stop = ""


class RetryCore(Policy):
    """The state and decisions of a Retry; see ``Retry`` for the public face."""

    __slots__ = (
        "_budget",
        "_clock",
        "_dead_letter",
        "_exhausted",
        "_failures",
        "_fast",
        "_guarded",
        "_on_result",
        "_only",
        "_queue",
        "_result_index",
        "_retries",
        "_rng",
        "_rules",
        "_slots",
        "_slow_successes",
        "_tests",
        "_timeout",
        "name",
        "options",
    )

    name: str
    options: RetryOptions
    _budget: RetryBudget | None
    _clock: Clock
    _dead_letter: DeadLetterSink | None
    _queue: str
    _on_result: Callable[[Any], bool] | None
    _rng: random.Random
    _rules: tuple[tuple[int, Backoff], ...]
    _tests: tuple[tuple[tuple[type[BaseException], ...], Matcher | None], ...]
    _only: tuple[type[BaseException], ...] | None
    _timeout: float | None
    _result_index: int
    _slots: int
    _guarded: bool
    _fast: int
    _slow_successes: int
    _retries: int
    _exhausted: int
    _failures: int

    # -- the decision ---------------------------------------------------------------------------

    def _plan(
        self, state: _CallState, index: int, hint: float | None, now: float, left: float | None
    ) -> float | None:
        """The delay before the next attempt, or None (with ``state.stop`` set) to give up.

        ``now`` is the retry's monotonic time, ``left`` the seconds before an outer deadline.
        """
        limit, backoff = self._rules[index]
        count = state.counts[index] + 1
        state.counts[index] = count
        if count >= limit:
            state.stop = "attempts"
            return None
        delays = state.delays[index]
        if delays is None:
            delays = state.delays[index] = backoff.delays(self._rng)
        delay = next(delays)
        if hint is not None and hint > delay:
            delay = min(hint, backoff.cap)
        if self._timeout is not None and now + delay >= state.started + self._timeout:
            state.stop = "timeout"
            return None
        if left is not None and delay >= left:
            state.stop = "deadline"
            return None
        if self._budget is not None and not self._budget.try_spend():
            state.stop = "budget"
            return None
        return delay

    def _next(self, state: _CallState) -> float | None:
        """Decide after a failed attempt: the delay before the next one, or None to stop."""
        error = state.error
        if error is None:
            index = self._result_index
            hint = result_hint(state.result, self._clock.time) if "httpx" in sys.modules else None
        else:
            # The first matching rule wins. Written out (and the common single-type case apart)
            # because this runs on every failed attempt.
            only = self._only
            if only is not None:
                index = 0 if isinstance(error, only) else -1
            else:
                index = 0
                for types, predicate in self._tests:
                    if isinstance(error, types) if predicate is None else predicate(error):
                        break
                    index += 1
                else:
                    index = -1
            if index < 0:
                self._failures += 1
                if state.attempts > 1:
                    error.add_note(
                        f"retry {self.name!r}: made {state.attempts} attempts; "
                        "the last error is not retried"
                    )
                return None
            try:
                hint = getattr(error, "retry_after", None)
            except Exception:  # a broken retry_after property must not replace the real error
                hint = None
            if hint is not None or "httpx" in sys.modules:
                hint = error_hint(error, self._clock.time)
        outer = DEADLINE.get()
        delay = self._plan(
            state,
            index,
            hint,
            0.0 if self._timeout is None else self._clock.monotonic(),
            None if outer is None else outer[0] - outer[1].monotonic(),
        )
        if delay is None:
            self._give_up(state)
            return None
        self._retries += 1
        if wants(RetryScheduled):
            emit(
                RetryScheduled(
                    source=self.name,
                    time=self._clock.time(),
                    attempt=state.attempts,
                    delay=delay,
                    error=error if error is not None else RetryableResult(state.result),
                )
            )
        state.attempts += 1
        return delay

    def _give_up(self, state: _CallState) -> None:
        self._exhausted += 1
        stop = state.stop
        if stop == "attempts":
            reason = "attempts exhausted"
        elif stop == "timeout":
            reason = f"the next attempt would pass the {self._timeout:g}s timeout"
        elif stop == "deadline":
            reason = "the next attempt would pass the outer deadline"
        else:
            budget = self._budget.name if self._budget is not None else "?"
            reason = f"retry budget {budget!r} is spent"
        error = state.error
        if error is not None:
            plural = "s" if state.attempts != 1 else ""
            error.add_note(
                f"retry {self.name!r}: gave up after {state.attempts} attempt{plural} ({reason})"
            )
        if wants(RetryExhausted):
            emit(
                RetryExhausted(
                    source=self.name,
                    time=self._clock.time(),
                    attempts=state.attempts,
                    reason=reason,
                    error=error,
                )
            )

    @staticmethod
    def _finish(state: _CallState) -> Any:
        """Return the last result, or raise the last error as it is (never wrapped)."""
        error = state.error
        if error is None:
            return state.result
        state.error = None
        try:
            raise error
        finally:
            # Break the cycle error -> traceback -> this frame -> error.
            del error

    # -- counters --------------------------------------------------------------------------------

    @property
    def calls(self) -> int:
        """Calls finished through this policy."""
        return self._fast + self._slow_successes + self._exhausted + self._failures

    @property
    def attempts(self) -> int:
        """Attempts made: first attempts plus retries."""
        return self.calls + self._retries

    @property
    def retries(self) -> int:
        """Retries made (attempts after the first)."""
        return self._retries

    @property
    def successes(self) -> int:
        """Calls that returned an accepted result."""
        return self._fast + self._slow_successes

    @property
    def exhausted(self) -> int:
        """Calls that gave up: attempts, timeout, outer deadline or budget."""
        return self._exhausted

    def snapshot(self) -> RetryStats:
        """The counters at once (plain ints, updated without a lock)."""
        fast, slow, retries = self._fast, self._slow_successes, self._retries
        exhausted, failures = self._exhausted, self._failures
        calls = fast + slow + exhausted + failures
        return RetryStats(
            calls=calls,
            attempts=calls + retries,
            retries=retries,
            successes=fast + slow,
            exhausted=exhausted,
            failures=failures,
        )
