"""``PartialFailure``: run several steps and succeed when enough of them do.

A page built from five services can still be served when one of them fails: the steps that
failed are reported (which, and why) and the caller renders what it has.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from buttress import _options as opt
from buttress._options import CANCELLATION
from buttress.errors import ButtressError, ConfigError

__all__ = ["PartialFailure", "PartialFailureError", "PartialResult", "StepFailure"]

Step = Callable[[], Any]
Steps = Mapping[str, Step] | Iterable[Step]


@dataclass(frozen=True, slots=True)
class StepFailure:
    """A step that failed: its ``name`` and the ``error`` it raised."""

    name: str
    error: BaseException

    @property
    def reason(self) -> str:
        """``Type: message`` of the error."""
        text = str(self.error)
        return f"{type(self.error).__name__}: {text}" if text else type(self.error).__name__


@dataclass(frozen=True, slots=True)
class PartialResult:
    """What a run gave: ``values`` of the steps that succeeded (by name, in step order),
    ``failures`` of the others, and the ``min_success_rate`` it was judged against."""

    values: dict[str, Any]
    failures: tuple[StepFailure, ...]
    min_success_rate: float
    names: tuple[str, ...] = field(default=())

    @property
    def success_rate(self) -> float:
        """The share of steps that succeeded."""
        total = len(self.values) + len(self.failures)
        return len(self.values) / total if total else 1.0

    @property
    def ok(self) -> bool:
        """Whether the share of successes reached the minimum."""
        return self.success_rate >= self.min_success_rate

    @property
    def complete(self) -> bool:
        """Whether every step succeeded."""
        return not self.failures

    @property
    def failed(self) -> dict[str, str]:
        """The failed steps and why (``Type: message``)."""
        return {failure.name: failure.reason for failure in self.failures}

    def describe(self) -> str:
        """One line: how many steps succeeded, and which failed and why."""
        total = len(self.values) + len(self.failures)
        text = f"{len(self.values)} of {total} steps succeeded"
        if self.failures:
            text += "; failed: " + "; ".join(f"{n} ({r})" for n, r in self.failed.items())
        return text


class PartialFailureError(ButtressError):
    """Too few steps succeeded; ``result`` holds the values and the failures."""

    def __init__(self, result: PartialResult) -> None:
        self.result = result
        super().__init__(
            f"{result.describe()}; needed a success rate of {result.min_success_rate:g}"
        )

    def __reduce__(self) -> tuple[type[PartialFailureError], tuple[PartialResult]]:
        return (type(self), (self.result,))


class PartialFailure:
    """Runs steps and succeeds if at least ``min_success_rate`` of them (0 < rate <= 1) do.

    ``run(steps)`` calls sync steps one after the other; ``await arun(steps)`` runs async steps
    concurrently (sync ones are called in turn first, in the loop's thread). ``steps`` is a
    mapping of names to no-argument callables, or a sequence of them (named after their
    ``__name__``, made unique with ``#n``). Both return a ``PartialResult`` when enough steps
    succeeded and raise ``PartialFailureError`` (with the result) otherwise. A step that raises
    cancellation (``KeyboardInterrupt``, ``SystemExit``, ``CancelledError``) stops the run:
    that is not a step failing.
    """

    __slots__ = ("min_success_rate", "name")

    def __init__(self, min_success_rate: float, *, name: str = "partial") -> None:
        self.min_success_rate = opt.rate("min_success_rate", min_success_rate)
        self.name = name

    def _named(self, steps: Steps) -> list[tuple[str, Step]]:
        if isinstance(steps, Mapping):
            items = [(str(name), step) for name, step in steps.items()]
        else:
            items = []
            seen: dict[str, int] = {}
            for step in steps:
                base = getattr(step, "__name__", None) or "step"
                seen[base] = seen.get(base, 0) + 1
                items.append((base if seen[base] == 1 else f"{base}#{seen[base]}", step))
        if not items:
            raise ConfigError("steps", steps, "must hold at least one step")
        for name, step in items:
            if not callable(step):
                raise ConfigError(f"steps.{name}", step, "must be callable with no arguments")
        return items

    def _judge(self, items: list[tuple[str, Step]], outcomes: dict[str, Any]) -> PartialResult:
        values: dict[str, Any] = {}
        failures: list[StepFailure] = []
        for name, _ in items:
            outcome = outcomes[name]
            if isinstance(outcome, _Failed):
                failures.append(StepFailure(name, outcome.error))
            else:
                values[name] = outcome
        result = PartialResult(
            values, tuple(failures), self.min_success_rate, tuple(n for n, _ in items)
        )
        if not result.ok:
            raise PartialFailureError(result)
        return result

    def run(self, steps: Steps) -> PartialResult:
        """Call each sync step in turn; the result, or ``PartialFailureError``."""
        items = self._named(steps)
        outcomes: dict[str, Any] = {}
        for name, step in items:
            if inspect.iscoroutinefunction(step):
                raise TypeError(f"step {name!r} is async; use arun()")
            try:
                outcomes[name] = step()
            except CANCELLATION:
                raise
            except Exception as exc:
                outcomes[name] = _Failed(exc)
        return self._judge(items, outcomes)

    async def arun(self, steps: Steps) -> PartialResult:
        """Run the steps, async ones concurrently; the result, or ``PartialFailureError``."""
        items = self._named(steps)
        outcomes: dict[str, Any] = {}
        pending: dict[str, Awaitable[Any]] = {}
        for name, step in items:
            try:
                value = step()
            except CANCELLATION:
                raise
            except Exception as exc:
                outcomes[name] = _Failed(exc)
                continue
            if inspect.isawaitable(value):
                pending[name] = value
            else:
                outcomes[name] = value
        if pending:
            names = list(pending)
            tasks = [asyncio.ensure_future(pending[name]) for name in names]
            try:
                done = await asyncio.gather(*tasks, return_exceptions=True)
            except asyncio.CancelledError:
                for task in tasks:
                    task.cancel()
                raise
            for name, outcome in zip(names, done, strict=True):
                if isinstance(outcome, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                    raise outcome
                outcomes[name] = _Failed(outcome) if isinstance(outcome, Exception) else outcome
        return self._judge(items, outcomes)

    def __repr__(self) -> str:
        return f"PartialFailure({self.min_success_rate:g}, name={self.name!r})"


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException
