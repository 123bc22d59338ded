"""Hypothesis strategies for flags, rules, variants and subjects' attributes."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from buttress.degrade import DegradationLevel
from buttress.degrade.flags import Flag, FlagRule, Variant

ATTRIBUTES = ("user", "tenant", "plan")
VALUES = ("a", "b", "c", "1", "2")

names = st.from_regex(r"[a-z][a-z0-9._-]{0,10}", fullmatch=True)
levels = st.sampled_from(list(DegradationLevel))
value_lists = st.lists(st.sampled_from(VALUES), min_size=1, max_size=3)


@st.composite
def variants(draw: st.DrawFn) -> tuple[Variant, ...]:
    """Zero to three variants with unique names and a positive total weight."""
    count = draw(st.integers(0, 3))
    weights = [draw(st.integers(0, 5)) for _ in range(count)]
    if count and not sum(weights):
        weights[0] = 1
    values: list[Any] = [
        draw(st.one_of(st.none(), st.text(max_size=3), st.integers())) for _ in weights
    ]
    return tuple(
        Variant(f"v{i}", w, v) for i, (w, v) in enumerate(zip(weights, values, strict=True))
    )


@st.composite
def rules(draw: st.DrawFn, variant_names: tuple[str, ...]) -> FlagRule:
    """A rule on one of the attributes, sometimes off, with a rollout or a forced variant."""
    op = draw(st.sampled_from(["in", "not_in", "equals"]))
    values = draw(value_lists)
    if op == "equals":
        values = values[:1]
    variant = draw(st.one_of(st.none(), st.sampled_from(variant_names))) if variant_names else None
    return FlagRule(
        draw(st.sampled_from(ATTRIBUTES)),
        op,
        values,
        enabled=draw(st.booleans()),
        rollout=draw(st.one_of(st.none(), st.integers(0, 100))),
        variant=variant,
    )


@st.composite
def flags(draw: st.DrawFn) -> Flag:
    """Any valid flag."""
    chosen = draw(variants())
    names_ = tuple(v.name for v in chosen)
    return Flag(
        draw(names),
        enabled=draw(st.booleans()),
        description=draw(st.text(max_size=10)),
        rollout=draw(st.integers(0, 100)),
        stickiness=draw(st.sampled_from(ATTRIBUTES)),
        group=draw(st.one_of(st.none(), names)),
        rules=draw(st.lists(rules(names_), max_size=3)),
        variants=chosen,
        off_at=draw(st.one_of(st.none(), levels.filter(lambda lv: lv > DegradationLevel.NORMAL))),
        requires=draw(st.lists(st.sampled_from(["db", "cache"]), max_size=2, unique=True)),
        killed=draw(st.booleans()),
    )


contexts = st.dictionaries(
    st.sampled_from(ATTRIBUTES),
    st.one_of(st.sampled_from(VALUES), st.integers(0, 3), st.booleans()),
    max_size=3,
)
failing_sets = st.frozensets(st.sampled_from(["db", "cache"]))
