"""What Retry retries: ``RetryRule``, the validated ``RetryOptions``, and their matchers."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, TypeAlias, TypeGuard

from buttress._clock import Clock
from buttress._options import ExceptionSpec, integer, optional_duration
from buttress.errors import CircuitOpenError, ConfigError
from buttress.retry._backoff import Backoff
from buttress.retry._budget import RetryBudget

__all__ = ["RetryOptions", "RetryRule", "RetrySpec", "compile_matcher"]

Matcher: TypeAlias = Callable[[BaseException], bool]

DEFAULT_BACKOFF = Backoff.exponential()


def compile_matcher(
    field: str, spec: object
) -> tuple[tuple[type[BaseException], ...], Matcher | None]:
    """``(types, None)`` to test with ``isinstance``, or ``((), predicate)``, for a spec.

    A ``CircuitOpenError`` matches a type spec only if the spec names ``CircuitOpenError`` (or a
    subclass) itself: ``on=Exception`` must not hammer a breaker that is protecting a dependency.
    """
    if isinstance(spec, type | tuple):
        types = (spec,) if isinstance(spec, type) else spec
        if not types:
            raise ConfigError(field, spec, "must name at least one exception type")
        for item in types:
            if not (isinstance(item, type) and issubclass(item, Exception)):
                raise ConfigError(
                    field, spec, "must name Exception subclasses (cancellation is never retried)"
                )
        open_types = tuple(t for t in types if issubclass(t, CircuitOpenError))
        shadows_open = any(issubclass(CircuitOpenError, t) for t in types)
        if CircuitOpenError in open_types or not shadows_open:
            return types, None

        def matches(exc: BaseException) -> bool:
            return isinstance(exc, types) and (
                not isinstance(exc, CircuitOpenError) or isinstance(exc, open_types)
            )

        return (), matches
    if callable(spec):
        return (), spec  # a predicate decides for itself
    raise ConfigError(
        field,
        spec,
        "must be an exception type, a tuple of them, a predicate or a list of RetryRule",
    )


@dataclass(frozen=True, slots=True)
class RetryRule:
    """Errors matching ``on`` get their own ``attempts`` limit and ``backoff`` schedule.

    ``RetryRule(on, *, attempts=None, backoff=None)``; None means the Retry's own value. The rule
    counts the failures that matched it: ``attempts`` caps how many attempts may end in its error,
    and its k-th failure waits the k-th delay of ``backoff``.
    """

    on: ExceptionSpec
    _: KW_ONLY
    attempts: int | None = None
    backoff: Backoff | None = None

    def __post_init__(self) -> None:
        if isinstance(self.on, list):
            raise ConfigError(
                "RetryRule.on", self.on, "must be an exception type, tuple or predicate"
            )
        compile_matcher("RetryRule.on", self.on)
        if self.attempts is not None:
            integer("RetryRule.attempts", self.attempts, minimum=1)
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise ConfigError("RetryRule.backoff", self.backoff, "must be a Backoff or None")


RetrySpec: TypeAlias = ExceptionSpec | Sequence[RetryRule]
"""What to retry: an exception type, a tuple of types, a predicate, or a list of ``RetryRule``."""


@dataclass(frozen=True, slots=True)
class RetryOptions:
    """Validated options of a ``Retry`` (see ``Retry`` for the meaning and defaults)."""

    on: RetrySpec
    attempts: int = 3
    backoff: Backoff = DEFAULT_BACKOFF
    timeout: float | None = None
    on_result: Callable[[Any], bool] | None = None
    budget: RetryBudget | None = None

    def __post_init__(self) -> None:
        on: object = self.on
        if _is_rules(on):
            object.__setattr__(self, "on", tuple(on))
        elif isinstance(on, list):
            raise ConfigError("on", on, "a list must hold one or more RetryRule objects")
        else:
            compile_matcher("on", on)
        integer("attempts", self.attempts, minimum=1)
        if not isinstance(self.backoff, Backoff):
            raise ConfigError(
                "backoff", self.backoff, "must be a Backoff, e.g. Backoff.exponential()"
            )
        object.__setattr__(self, "timeout", optional_duration("timeout", self.timeout))
        if self.on_result is not None and not callable(self.on_result):
            raise ConfigError("on_result", self.on_result, "must be a predicate result -> bool")
        if self.budget is not None and not isinstance(self.budget, RetryBudget):
            raise ConfigError("budget", self.budget, "must be a RetryBudget or None")

    def rules(
        self,
    ) -> tuple[tuple[tuple[type[BaseException], ...], Matcher | None, int, Backoff], ...]:
        """Each rule as (types, predicate, attempts, backoff), the Retry's defaults filled in."""
        if _is_rules(self.on):
            return tuple(
                (
                    *compile_matcher("on", rule.on),
                    self.attempts if rule.attempts is None else rule.attempts,
                    self.backoff if rule.backoff is None else rule.backoff,
                )
                for rule in self.on
            )
        return ((*compile_matcher("on", self.on), self.attempts, self.backoff),)


def _is_rules(on: object) -> TypeGuard[Sequence[RetryRule]]:
    return isinstance(on, list | tuple) and bool(on) and all(isinstance(r, RetryRule) for r in on)


def check_runtime(name: object, clock: object, rng: object) -> None:
    """Validate the options that are not part of ``RetryOptions``."""
    if not isinstance(name, str) or not name:
        raise ConfigError("name", name, "must be a non-empty string")
    if clock is not None and not isinstance(clock, Clock):
        raise ConfigError("clock", clock, "must be a Clock (monotonic, time, sleep, asleep)")
    if rng is not None and not isinstance(rng, random.Random):
        raise ConfigError("rng", rng, "must be a random.Random")
