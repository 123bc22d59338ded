"""Evaluation: the order of the decision, targeting, dependencies, and the compiled hot path
agreeing with the reference."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from buttress.degrade import DegradationLevel
from buttress.degrade.flags import Flag, FlagRule, Variant
from buttress.degrade.flags._eval import (
    DEGRADED,
    DISABLED,
    KILLED,
    SPLIT,
    STATIC,
    TARGETING_MATCH,
    UNHEALTHY,
    compile_check,
    compile_picker,
    decide,
    in_rollout,
)

from ._strategies import contexts, failing_sets, flags, levels


@dataclass
class Level:
    """A level source whose level the test sets."""

    level: DegradationLevel = DegradationLevel.NORMAL


def test_killed_beats_everything() -> None:
    """A killed flag is off even for a subject a rule targets."""
    flag = Flag("f", enabled=True, killed=True, rules=[FlagRule("user", "in", ["1"])])
    result = decide(flag, {"user": "1"})
    assert (result.enabled, result.reason) == (False, KILLED)


def test_the_order_of_off_reasons() -> None:
    """Disabled comes before unhealthy, unhealthy before degraded."""
    base = Flag("f", enabled=True, requires="db", off_at="moderate")
    severe = DegradationLevel.SEVERE
    assert decide(base.replace(enabled=False), {}, severe, frozenset({"db"})).reason == DISABLED
    assert decide(base, {}, severe, frozenset({"db"})).reason == UNHEALTHY
    assert decide(base, {}, severe).reason == DEGRADED
    assert decide(base, {}, DegradationLevel.MINOR).reason == STATIC


def test_off_at_is_inclusive() -> None:
    """The flag is off from its off_at level up, on below it; an unknown level never degrades."""
    flag = Flag("f", enabled=True, off_at="moderate")
    assert decide(flag, {}, DegradationLevel.MINOR).enabled
    assert not decide(flag, {}, DegradationLevel.MODERATE).enabled
    assert not decide(flag, {}, DegradationLevel.MAINTENANCE).enabled
    assert decide(flag, {}, None).enabled


def test_first_matching_rule_wins() -> None:
    """Rules are tried in order; the first that matches decides, later ones are ignored."""
    flag = Flag(
        "f",
        enabled=True,
        rollout=0,
        rules=[FlagRule("user", "equals", "7", enabled=False), FlagRule("tenant", "in", ["acme"])],
    )
    assert decide(flag, {"tenant": "acme", "user": "1"}).enabled
    blocked = decide(flag, {"tenant": "acme", "user": "7"})
    assert (blocked.enabled, blocked.reason, blocked.rule) == (False, TARGETING_MATCH, 0)
    nobody = decide(flag, {"tenant": "other", "user": "1"})
    assert (nobody.enabled, nobody.reason) == (False, SPLIT)


def test_not_in_matches_a_missing_attribute() -> None:
    """not_in matches a subject without the attribute (as Unleash's NOT_IN); in does not."""
    flag = Flag("f", enabled=True, rollout=0, rules=[FlagRule("country", "not_in", ["fr"])])
    assert decide(flag, {}).enabled
    assert not decide(flag, {"country": "fr"}).enabled
    assert not decide(
        Flag("g", enabled=True, rollout=0, rules=[FlagRule("c", "in", "x")]), {}
    ).enabled


def test_attribute_values_compare_as_text() -> None:
    """Integers and booleans in the context match their text in a rule."""
    flag = Flag("f", enabled=True, rollout=0, rules=[FlagRule("beta", "in", ["true", "42"])])
    assert decide(flag, {"beta": True}).enabled
    assert decide(flag, {"beta": 42}).enabled
    assert not decide(flag, {"beta": False}).enabled


def test_rollout_needs_a_subject() -> None:
    """Without the stickiness attribute a partial rollout is off; 100 % is on for everyone."""
    assert not decide(Flag("f", enabled=True, rollout=99), {}).enabled
    assert decide(Flag("f", enabled=True), {}).enabled
    assert (
        decide(Flag("f", enabled=True, rollout=50, stickiness="tenant"), {"tenant": "x"}).reason
        == SPLIT
    )


def test_variants_follow_rules_and_weights() -> None:
    """A rule may force a variant; otherwise weights choose; an off flag serves none."""
    flag = Flag(
        "colour",
        enabled=True,
        variants=[Variant("red", 1, "#f00"), Variant("blue", 3, "#00f")],
        rules=[FlagRule("tenant", "in", ["acme"], variant="red")],
    )
    forced = decide(flag, {"tenant": "acme", "user": "9"})
    assert (forced.variant, forced.value) == ("red", "#f00")
    chosen = [decide(flag, {"user": str(u)}).variant for u in range(400)]
    assert 220 <= chosen.count("blue") <= 380
    assert decide(flag.replace(enabled=False), {"user": "1"}).variant is None


def test_compiled_check_reads_the_level_per_call() -> None:
    """A compiled flag with off_at follows its level source without recompiling."""
    source = Level()
    check = compile_check(Flag("f", enabled=True, off_at="severe"), source)
    assert check({})
    source.level = DegradationLevel.CRITICAL
    assert not check({})
    source.level = DegradationLevel.MINOR
    assert check({})


def test_bucket_cache_is_bounded() -> None:
    """The per-flag cache of bucket results is cleared when full, and answers stay right."""
    check = compile_check(Flag("f", enabled=True, rollout=50), cache_size=8)
    for user in range(100):
        assert check({"user": str(user)}) is in_rollout("f", str(user), 50)
    freevars = check.__code__.co_freevars
    cache = check.__closure__[freevars.index("cache")].cell_contents  # type: ignore[index]
    assert len(cache) <= 8


@given(flags(), contexts, st.one_of(st.none(), levels), failing_sets)
def test_compiled_closures_agree_with_decide(
    flag: Flag,
    context: dict[str, object],
    level: DegradationLevel | None,
    failing: frozenset[str],
) -> None:
    """For any flag, context, level and failing checks, the hot path gives decide()'s answer."""
    source = None if level is None else Level(level)
    check = compile_check(flag, source, failing)
    picker = compile_picker(flag, check, source, failing)
    expected = decide(flag, context, level, failing)
    assert check(context) is expected.enabled
    assert picker(context) == expected.variant
    assert check(context) is expected.enabled  # a cached answer is the same answer
    assert picker(context) == expected.variant
