"""``Hedge``: when a call is slow, start another one and take whichever answers first."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

from buttress import _options
from buttress._clock import SYSTEM_CLOCK, Clock, TimerHandle
from buttress._policy import Policy
from buttress.events import HedgeLaunched, emit, wants

__all__ = ["Hedge", "HedgeOptions", "HedgeSnapshot"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HedgeOptions:
    """A hedge's options; see ``Hedge``."""

    delay: float
    max_hedged: int = 1


@dataclass(frozen=True, slots=True)
class HedgeSnapshot:
    """Hedged attempts launched so far, and calls a hedged attempt won."""

    name: str
    launched: int
    won: int


async def _attempt(fn: Callable[..., Awaitable[T]], args: Any, kwargs: Any) -> T:
    return await fn(*args, **kwargs)


class Hedge(Policy):
    """Start up to ``max_hedged`` extra attempts of a slow asyncio call; the first success wins.

    ``Hedge(*, delay, max_hedged=1, name="hedge", clock=None)``: ``delay`` (seconds or
    ``timedelta``, >= 0) after the primary attempt started without finishing, a hedged attempt
    starts, then another after each further ``delay``, up to ``max_hedged`` of them. An attempt
    that fails starts the next one at once. The first attempt to succeed wins; the others are
    cancelled and awaited, so none outlives the call. When every attempt fails, the primary
    (first) attempt's error is raised, with a note saying how many attempts failed. Cancelling the
    caller cancels every attempt. Only for idempotent work; asyncio only (``call`` raises
    ``TypeError``). With ``delay=0`` all attempts start together.
    """

    __slots__ = ("_clock", "_delay", "_max_hedged", "launched", "name", "options", "won")

    options: HedgeOptions

    def __init__(
        self,
        *,
        delay: float | timedelta,
        max_hedged: int = 1,
        name: str = "hedge",
        clock: Clock | None = None,
    ) -> None:
        delay = _options.duration("delay", delay, allow_zero=True)
        max_hedged = _options.integer("max_hedged", max_hedged, minimum=1)
        self.name = name
        self.options = HedgeOptions(delay, max_hedged)
        self.launched = 0
        self.won = 0
        self._delay = delay
        self._max_hedged = max_hedged
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock

    def snapshot(self) -> HedgeSnapshot:
        """Hedged attempts launched, and calls that a hedged attempt (not the primary) won."""
        return HedgeSnapshot(self.name, self.launched, self.won)

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Not supported: hedging needs concurrent attempts, so it works on asyncio calls only."""
        raise TypeError(
            f"hedge {self.name!r}: Hedge works on asyncio calls only; use acall() or decorate "
            "an async function"
        )

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)``, hedged: the first attempt to succeed wins."""
        loop = asyncio.get_running_loop()
        clock = self._clock
        delay = self._delay
        limit = self._max_hedged + 1
        attempts: list[asyncio.Task[T]] = []
        errors: dict[asyncio.Task[T], BaseException] = {}
        wake: asyncio.Future[None] = loop.create_future()
        timer: TimerHandle | None = None
        due = False

        def poke(_: object = None) -> None:
            if not wake.done():
                wake.set_result(None)

        def on_timer() -> None:
            nonlocal due
            due = True
            poke()

        def launch() -> None:
            nonlocal timer, due
            number = len(attempts)
            task = loop.create_task(_attempt(fn, args, kwargs))
            task.add_done_callback(poke)
            attempts.append(task)
            if number:
                self.launched += 1
                if wants(HedgeLaunched):
                    emit(HedgeLaunched(self.name, clock.time(), number))
            if timer is not None:
                timer.cancel()
                timer = None
            due = False
            if delay > 0 and len(attempts) < limit:
                timer = clock.call_at(clock.monotonic() + delay, on_timer)

        try:
            launch()
            while delay == 0 and len(attempts) < limit:
                launch()
            while True:
                await wake
                wake = loop.create_future()
                failures = 0
                for task in attempts:
                    if task in errors or not task.done():
                        continue
                    if task.cancelled():
                        # Cancelled by someone else: a failed attempt without an error of its own.
                        errors[task] = asyncio.CancelledError()
                    elif (error := task.exception()) is not None:
                        errors[task] = error
                    else:
                        if task is not attempts[0]:
                            self.won += 1
                        return task.result()
                    failures += 1
                if len(errors) == limit:
                    raise self._give_up(attempts, errors)
                # One hedge per failed attempt, or one because the delay passed.
                wanted = failures or (1 if due else 0)
                for _ in range(min(wanted, limit - len(attempts))):
                    launch()
        finally:
            if timer is not None:
                timer.cancel()
            await _cancel_all(attempts)

    def _give_up(
        self, attempts: list[asyncio.Task[T]], errors: dict[asyncio.Task[T], BaseException]
    ) -> BaseException:
        """The first attempt's error (skipping attempts that were cancelled from outside)."""
        ordered = [errors[task] for task in attempts]
        real = [e for e in ordered if not isinstance(e, asyncio.CancelledError)]
        error = real[0] if real else ordered[0]
        error.add_note(
            f"buttress hedge {self.name!r}: all {len(attempts)} attempts failed; "
            "this is the first attempt's error"
        )
        return error


def _retrieve(task: asyncio.Task[Any]) -> None:
    # Mark a loser's late error as seen, so asyncio does not log "exception never retrieved".
    if not task.cancelled():
        task.exception()


async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel the attempts still running and wait until they have all finished."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.add_done_callback(_retrieve)
        task.cancel()
    if pending:
        await asyncio.wait(pending)
