"""The rules a ``DegradationManager`` evaluates: each gives a level while it holds.

- ``HealthRule("postgres", "severe")``: the health check's last result is ``fail`` (or one of
  ``statuses``); read from the health registry's cache, never run by the rule.
- ``BreakerRule("payments", "moderate")``: the circuit breaker is open or forced open (or in one
  of ``states``); a name is looked up in the manager's ``Registry``. Half open is left out by
  default: a breaker whose open period ended wants trial calls, and a feature kept off by the
  rule would never send them.
- ``LoadRule("queue", signal=queue.depth, threshold=1000, level="minor")``: ``signal()`` is at
  least ``threshold``; with ``per_second=True`` the signal is a growing count (a limiter's
  refusals) and its increase per second since the previous evaluation is compared.
- ``PredicateRule("overload", predicate, "minor")``: ``predicate()`` is truthy; a string it
  returns becomes the reason.

A rule's ``check(context)`` returns the reason it holds, or None. Rules never give ``NORMAL``
(pointless) nor ``MAINTENANCE`` (only an operator sets it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from buttress import _options as opt
from buttress._redact import redact
from buttress.breaker import CircuitBreaker
from buttress.degrade._levels import DegradationLevel
from buttress.errors import ConfigError

if TYPE_CHECKING:
    from buttress.health import CheckResult, HealthRegistry
    from buttress.registry import Registry

__all__ = [
    "BreakerRule",
    "HealthRule",
    "LoadRule",
    "PredicateRule",
    "Rule",
    "RuleContext",
    "check_rules",
    "rules_view",
]

HEALTH_STATUSES = frozenset({"fail", "warn", "unknown"})
BREAKER_STATES = frozenset({"open", "forced_open", "half_open", "closed", "disabled"})
_MAX_OUTPUT = 120
RATE_SPAN = 1.0
"""Seconds at least between two readings of a ``per_second`` load signal."""


class RuleContext:
    """What rules read during one evaluation: ``now`` (monotonic), the health registry's cached
    results (looked up once per evaluation) and the registry's breakers."""

    __slots__ = ("_results", "health", "now", "registry")

    def __init__(
        self, now: float, health: HealthRegistry | None, registry: Registry | None
    ) -> None:
        self.now = now
        self.health = health
        self.registry = registry
        self._results: dict[str, CheckResult | None] | None = None

    def result(self, check: str) -> CheckResult | None:
        """The last result of health check ``check`` (None if it never ran); KeyError if there
        is no such check, LookupError if there is no health registry."""
        if self._results is None:
            if self.health is None:
                raise LookupError("the manager has no health registry (health=)")
            self._results = {c.name: r for c, r in self.health.last_results()}
        return self._results[check]


def rule_level(value: object) -> DegradationLevel:
    """A rule's level: MINOR to CRITICAL, by value or lower-case name."""
    level = DegradationLevel.from_name(value)  # type: ignore[arg-type]
    if level in (DegradationLevel.NORMAL, DegradationLevel.MAINTENANCE):
        raise ConfigError("level", value, "must be minor, moderate, severe or critical")
    return level


def check_rules(rules: Iterable[Rule], health: HealthRegistry | None) -> tuple[Rule, ...]:
    """``rules`` as a tuple, checked: rules only, unique names, health rules only with a health
    registry."""
    found = tuple(rules)
    names: set[str] = set()
    for index, rule in enumerate(found):
        if not isinstance(rule, Rule):
            raise ConfigError(f"rules[{index}]", rule, "must be a Rule (HealthRule...)")
        if rule.kind == "health" and health is None:
            raise ConfigError(f"rules[{index}]", rule, "needs the manager's health=")
        if rule.name in names:
            raise ConfigError("rules", rule.name, "must have unique names")
        names.add(rule.name)
    return found


def rules_view(
    rules: Iterable[Rule], held: Mapping[str, str], errors: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Each rule as plain data with whether it ``holds``, its ``reason`` and its ``error``."""
    return [
        {
            **rule.describe(),
            "holds": rule.name in held,
            "reason": held.get(rule.name),
            "error": errors.get(rule.name),
        }
        for rule in rules
    ]


class Rule:
    """Base of the rules: a ``name``, the ``level`` it gives, and ``check(context)``."""

    __slots__ = ("level", "name")

    kind: ClassVar[str] = "rule"

    def __init__(self, name: str, level: DegradationLevel | str) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError("name", name, "must be a non-empty string")
        self.name = name
        self.level = rule_level(level)

    def check(self, context: RuleContext) -> str | None:
        """The reason the rule holds now, or None."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The rule as plain data."""
        return {"name": self.name, "kind": self.kind, "level": self.level.label}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.level.label!r})"


class HealthRule(Rule):
    """``HealthRule(check, level, *, statuses=("fail",), name=check)``: holds while the health
    check's last result has one of ``statuses`` (``fail``, ``warn``, ``unknown``)."""

    __slots__ = ("check_name", "statuses")

    kind: ClassVar[str] = "health"

    def __init__(
        self,
        check: str,
        level: DegradationLevel | str,
        *,
        statuses: Iterable[str] = ("fail",),
        name: str | None = None,
    ) -> None:
        if not isinstance(check, str) or not check:
            raise ConfigError("check", check, "must be the name of a health check")
        super().__init__(name or check, level)
        self.check_name = check
        found = (statuses,) if isinstance(statuses, str) else tuple(statuses)
        if not found or not set(found) <= HEALTH_STATUSES:
            raise ConfigError("statuses", statuses, "must hold some of fail, warn, unknown")
        self.statuses = frozenset(found)

    def check(self, context: RuleContext) -> str | None:
        result = context.result(self.check_name)
        status = "unknown" if result is None else result.status.value
        if status not in self.statuses:
            return None
        output = "" if result is None else redact(result.output)[:_MAX_OUTPUT]
        return f"health check {self.check_name!r} is {status}" + (f": {output}" if output else "")

    def describe(self) -> dict[str, Any]:
        return {**Rule.describe(self), "check": self.check_name, "statuses": sorted(self.statuses)}


class BreakerRule(Rule):
    """``BreakerRule(breaker, level, *, states=("open", "forced_open"), name=breaker's name)``:
    holds while the breaker (a ``CircuitBreaker`` or a name in the manager's registry) is in one
    of ``states``."""

    __slots__ = ("breaker", "states")

    kind: ClassVar[str] = "breaker"

    def __init__(
        self,
        breaker: str | CircuitBreaker,
        level: DegradationLevel | str,
        *,
        states: Iterable[str] = ("open", "forced_open"),
        name: str | None = None,
    ) -> None:
        if isinstance(breaker, CircuitBreaker):
            label = breaker.name
        elif isinstance(breaker, str) and breaker:
            label = breaker
        else:
            raise ConfigError("breaker", breaker, "must be a CircuitBreaker or a breaker's name")
        super().__init__(name or label, level)
        self.breaker = breaker
        found = (states,) if isinstance(states, str) else tuple(states)
        if not found or not set(found) <= BREAKER_STATES:
            raise ConfigError("states", states, f"must hold some of {sorted(BREAKER_STATES)}")
        self.states = frozenset(found)

    def resolve(self, registry: Registry | None) -> CircuitBreaker:
        """The breaker itself; KeyError or LookupError when a name cannot be found."""
        if isinstance(self.breaker, CircuitBreaker):
            return self.breaker
        if registry is None:
            raise LookupError(f"breaker {self.breaker!r}: the manager has no registry")
        found: CircuitBreaker = registry.get(self.breaker, "breaker")
        return found

    def check(self, context: RuleContext) -> str | None:
        breaker = self.resolve(context.registry)
        state = breaker.state.value
        return f"circuit breaker {breaker.name!r} is {state}" if state in self.states else None

    def describe(self) -> dict[str, Any]:
        label = self.breaker.name if isinstance(self.breaker, CircuitBreaker) else self.breaker
        return {**Rule.describe(self), "breaker": label, "states": sorted(self.states)}


class LoadRule(Rule):
    """``LoadRule(name, *, signal, threshold, level, per_second=False)``: holds while
    ``signal()`` (a number: a queue's depth) is at least ``threshold``. With ``per_second``,
    ``signal()`` is a count that only grows (refusals so far) and the rule compares its increase
    per second since the previous reading; readings are at least ``RATE_SPAN`` (1 s) apart, so
    two evaluations in quick succession cannot make a rate out of one event (in between, the
    previous verdict stands; the first evaluation only takes a reading)."""

    __slots__ = ("_last", "_verdict", "per_second", "signal", "threshold")

    kind: ClassVar[str] = "load"

    def __init__(
        self,
        name: str,
        *,
        signal: Callable[[], float],
        threshold: float,
        level: DegradationLevel | str,
        per_second: bool = False,
    ) -> None:
        super().__init__(name, level)
        if not callable(signal):
            raise ConfigError("signal", signal, "must be a callable returning a number")
        self.signal = signal
        self.threshold = opt.number("threshold", threshold, minimum=0)
        if not isinstance(per_second, bool):
            raise ConfigError("per_second", per_second, "must be true or false")
        self.per_second = per_second
        self._last: tuple[float, float] | None = None
        self._verdict: str | None = None

    def check(self, context: RuleContext) -> str | None:
        raw = self.signal()
        if isinstance(raw, bool) or not isinstance(raw, int | float) or math.isnan(raw):
            raise TypeError(f"load signal {self.name!r} returned {raw!r}, not a number")
        value = float(raw)
        if self.per_second:
            last = self._last
            if last is not None and context.now - last[0] < RATE_SPAN:
                return self._verdict
            self._last = (context.now, value)
            if last is None:
                return None
            value = max(0.0, value - last[1]) / (context.now - last[0])
        verdict = None
        if value >= self.threshold:
            unit = "/s" if self.per_second else ""
            verdict = f"{self.name} is {value:g}{unit} (threshold {self.threshold:g}{unit})"
        self._verdict = verdict
        return verdict

    def describe(self) -> dict[str, Any]:
        return {**Rule.describe(self), "threshold": self.threshold, "per_second": self.per_second}


class PredicateRule(Rule):
    """``PredicateRule(name, predicate, level)``: holds while ``predicate()`` is truthy; a
    non-empty string it returns is the reason."""

    __slots__ = ("predicate",)

    kind: ClassVar[str] = "predicate"

    def __init__(
        self, name: str, predicate: Callable[[], object], level: DegradationLevel | str
    ) -> None:
        super().__init__(name, level)
        if not callable(predicate):
            raise ConfigError("predicate", predicate, "must be a callable: predicate() -> bool")
        self.predicate = predicate

    def check(self, context: RuleContext) -> str | None:
        value = self.predicate()
        if not value:
            return None
        return redact(value)[:_MAX_OUTPUT] if isinstance(value, str) else self.name
