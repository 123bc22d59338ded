"""The rules: health checks, breaker states, load signals and predicates, and their checks."""

from __future__ import annotations

import pytest

from buttress import Registry
from buttress.degrade import BreakerRule, DegradationLevel, HealthRule, LoadRule, PredicateRule
from buttress.degrade._rules import RuleContext, check_rules
from buttress.errors import ConfigError
from buttress.health import HealthRegistry

from .conftest import Switches


def test_health_rule_holds_while_the_check_fails(
    health: HealthRegistry, switches: Switches
) -> None:
    """A failing check makes the rule hold with the check's output; passing, it does not."""
    rule = HealthRule("postgres", "severe")
    assert rule.level is DegradationLevel.SEVERE
    assert rule.name == "postgres"
    assert rule.check(RuleContext(0.0, health, None)) is None  # never ran: unknown
    switches.up["postgres"] = False
    health.run_sync(fresh=True)
    reason = rule.check(RuleContext(0.0, health, None))
    assert reason == "health check 'postgres' is fail: postgres is down"
    switches.up["postgres"] = True
    health.run_sync(fresh=True)
    assert rule.check(RuleContext(0.0, health, None)) is None


def test_health_rule_can_watch_other_statuses(health: HealthRegistry) -> None:
    """``statuses=("unknown",)`` holds while the check never ran."""
    rule = HealthRule("search", "minor", statuses=("unknown",), name="search-unknown")
    assert rule.check(RuleContext(0.0, health, None)) == "health check 'search' is unknown"
    assert rule.describe()["statuses"] == ["unknown"]


def test_health_rule_of_a_missing_check_raises(health: HealthRegistry) -> None:
    """A rule naming a check that does not exist raises KeyError when checked."""
    with pytest.raises(KeyError):
        HealthRule("nope", "minor").check(RuleContext(0.0, health, None))


def test_breaker_rule_by_name_and_by_object(registry: Registry) -> None:
    """A breaker rule holds while the breaker is open or forced open, found by name or given."""
    breaker = registry.get("payments", "breaker")
    by_name, by_object = BreakerRule("payments", "moderate"), BreakerRule(breaker, "moderate")
    context = RuleContext(0.0, None, registry)
    assert by_name.check(context) is None
    assert by_object.check(context) is None
    breaker.trip()
    assert by_name.check(context) == "circuit breaker 'payments' is forced_open"
    assert by_object.check(RuleContext(0.0, None, None)) is not None
    breaker.reset()
    assert by_name.check(context) is None


def test_breaker_rule_leaves_half_open_out_by_default(registry: Registry, clock) -> None:
    """An open breaker whose open period ended reads half open: the rule stops holding."""
    breaker = registry.get("payments", "breaker")
    rule = BreakerRule("payments", "moderate")
    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            breaker.call(lambda: 1 / 0)
    assert rule.check(RuleContext(0.0, None, registry)) == "circuit breaker 'payments' is open"
    clock.advance(31)
    assert rule.check(RuleContext(0.0, None, registry)) is None
    strict = BreakerRule("payments", "moderate", states=("open", "half_open"), name="strict")
    assert strict.check(RuleContext(0.0, None, registry)) is not None


def test_breaker_rule_by_name_needs_a_registry() -> None:
    """Without a registry a breaker named by name cannot be found: LookupError."""
    with pytest.raises(LookupError, match="no registry"):
        BreakerRule("payments", "minor").check(RuleContext(0.0, None, None))


def test_load_rule_compares_the_signal_to_the_threshold() -> None:
    """The rule holds while the signal is at least the threshold."""
    depth = [10]
    rule = LoadRule("queue", signal=lambda: depth[0], threshold=100, level="minor")
    assert rule.check(RuleContext(0.0, None, None)) is None
    depth[0] = 100
    assert rule.check(RuleContext(0.0, None, None)) == "queue is 100 (threshold 100)"


def test_load_rule_per_second_reads_the_growth_of_a_count() -> None:
    """With per_second, the increase per second since the last check is compared."""
    refused = [0]
    rule = LoadRule(
        "refusals", signal=lambda: refused[0], threshold=5, level="moderate", per_second=True
    )
    assert rule.check(RuleContext(0.0, None, None)) is None  # first reading
    refused[0] = 40
    assert rule.check(RuleContext(10.0, None, None)) is None  # 4/s
    refused[0] = 100
    assert rule.check(RuleContext(20.0, None, None)) == "refusals is 6/s (threshold 5/s)"


def test_load_rule_refuses_a_signal_that_is_not_a_number() -> None:
    """A signal returning something else raises TypeError when checked."""
    rule = LoadRule("bad", signal=lambda: "many", threshold=1, level="minor")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="not a number"):
        rule.check(RuleContext(0.0, None, None))


def test_predicate_rule_uses_a_returned_string_as_the_reason() -> None:
    """A truthy predicate holds; a string it returns is the reason, else the rule's name."""
    answer: list[object] = [False]
    rule = PredicateRule("overload", lambda: answer[0], "minor")
    assert rule.check(RuleContext(0.0, None, None)) is None
    answer[0] = True
    assert rule.check(RuleContext(0.0, None, None)) == "overload"
    answer[0] = "CPU at 97%"
    assert rule.check(RuleContext(0.0, None, None)) == "CPU at 97%"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: HealthRule("pg", "normal"), "level"),
        (lambda: HealthRule("pg", "maintenance"), "level"),
        (lambda: HealthRule("", "minor"), "check"),
        (lambda: HealthRule("pg", "minor", statuses=("pass",)), "statuses"),
        (lambda: BreakerRule(3, "minor"), "breaker"),  # type: ignore[arg-type]
        (lambda: BreakerRule("b", "minor", states=("ajar",)), "states"),
        (lambda: LoadRule("q", signal=5, threshold=1, level="minor"), "signal"),  # type: ignore[arg-type]
        (lambda: LoadRule("q", signal=lambda: 1, threshold=-1, level="minor"), "threshold"),
        (lambda: PredicateRule("p", "yes", "minor"), "predicate"),  # type: ignore[arg-type]
    ],
)
def test_bad_rules_raise_config_error_naming_the_field(build, field: str) -> None:
    """Each bad option is refused at construction with ConfigError naming it."""
    with pytest.raises(ConfigError) as caught:
        build()
    assert caught.value.field == field


def test_check_rules_refuses_duplicates_and_health_rules_without_health() -> None:
    """Rule names are unique; a health rule needs a health registry; only rules are rules."""
    with pytest.raises(ConfigError, match="unique"):
        check_rules([PredicateRule("a", bool, "minor"), PredicateRule("a", bool, "minor")], None)
    with pytest.raises(ConfigError, match="health="):
        check_rules([HealthRule("pg", "minor")], None)
    with pytest.raises(ConfigError, match="must be a Rule"):
        check_rules(["pg"], None)  # type: ignore[list-item]


def test_load_rule_per_second_needs_a_second_between_readings() -> None:
    """Two checks a millisecond apart do not turn one refusal into 1000/s: the verdict stands."""
    refused = [0]
    rule = LoadRule(
        "refusals", signal=lambda: refused[0], threshold=5, level="minor", per_second=True
    )
    rule.check(RuleContext(0.0, None, None))
    refused[0] = 1
    assert rule.check(RuleContext(0.001, None, None)) is None
    refused[0] = 100
    assert rule.check(RuleContext(0.5, None, None)) is None  # still the first reading's span
    assert rule.check(RuleContext(2.0, None, None)) == "refusals is 50/s (threshold 5/s)"
    assert rule.check(RuleContext(2.2, None, None)) == "refusals is 50/s (threshold 5/s)"
