"""Flags, rules and variants: validation at construction, plain-data round trips."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from buttress.degrade import DegradationLevel
from buttress.degrade.flags import Flag, FlagRule, Variant
from buttress.degrade.flags._model import parse_changes
from buttress.errors import ConfigError

from ._strategies import flags


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Flag(""), "name"),
        (lambda: Flag("has space"), "name"),
        (lambda: Flag("ok", rollout=101), "rollout"),
        (lambda: Flag("ok", rollout=-1), "rollout"),
        (lambda: Flag("ok", rollout=True), "rollout"),
        (lambda: Flag("ok", enabled="yes"), "enabled"),  # type: ignore[arg-type]
        (lambda: Flag("ok", off_at="normal"), "off_at"),
        (lambda: Flag("ok", off_at="bad"), "level"),
        (lambda: Flag("ok", stickiness=""), "stickiness"),
        (lambda: Flag("ok", group=""), "group"),
        (lambda: Flag("ok", rules=["tenant in a"]), "rules[0]"),  # type: ignore[list-item]
        (lambda: Flag("ok", variants=[Variant("a", 0)]), "variants"),
        (lambda: Flag("ok", variants=[Variant("a"), Variant("a")]), "variants"),
        (
            lambda: Flag(
                "ok", variants=[Variant("a")], rules=[FlagRule("u", "in", "x", variant="b")]
            ),
            "rules[0].variant",
        ),
        (lambda: FlagRule("user", "like", ["a"]), "op"),
        (lambda: FlagRule("user", "in", []), "values"),
        (lambda: FlagRule("user", "equals", ["a", "b"]), "values"),
        (lambda: FlagRule("", "in", ["a"]), "attribute"),
        (lambda: FlagRule("user", "in", [{"a": 1}]), "values"),  # type: ignore[list-item]
        (lambda: Variant("a", -1), "weight"),
        (lambda: Variant("a", 1, object()), "value"),
    ],
)
def test_bad_input_raises_config_error_naming_the_field(build: Any, field: str) -> None:
    """Each invalid argument raises ConfigError whose field names it."""
    with pytest.raises(ConfigError) as caught:
        build()
    assert caught.value.field == field


def test_defaults_are_off_everyone_when_enabled() -> None:
    """A new flag is off; enabled it serves 100 % by user; kind follows its variants."""
    flag = Flag("checkout")
    assert (flag.enabled, flag.rollout, flag.stickiness, flag.kind) == (
        False,
        100,
        "user",
        "boolean",
    )
    assert flag.bucket_group == "checkout"
    assert Flag("c", variants=[Variant("red")]).kind == "variant"


def test_values_and_levels_are_normalised() -> None:
    """A single value becomes a tuple; ints become text; off_at takes a level name."""
    rule = FlagRule("user", "in", 7)
    assert rule.values == ("7",)
    assert Flag("x", off_at="Severe", requires="db").off_at is DegradationLevel.SEVERE
    assert Flag("x", requires="db").requires == ("db",)


@given(flags())
def test_plain_data_round_trip(flag: Flag) -> None:
    """to_dict then from_dict gives back an equal flag, for any valid flag."""
    assert Flag.from_dict(flag.to_dict()) == flag


def test_from_dict_names_the_nested_path() -> None:
    """A bad rule in plain data is reported with its path."""
    data = {"name": "x", "rules": [{"attribute": "user", "op": "like", "values": ["a"]}]}
    with pytest.raises(ConfigError) as caught:
        Flag.from_dict(data, path="flags.x")
    assert caught.value.field == "flags.x.rules[0].op"
    with pytest.raises(ConfigError) as unknown:
        Flag.from_dict({"name": "x", "colour": "red"})
    assert unknown.value.field == "flag.colour"


def test_replace_validates_and_refuses_unknown_fields() -> None:
    """replace() returns a validated copy; an unknown field is a ConfigError."""
    flag = Flag("x", rollout=10)
    assert flag.replace(rollout=20).rollout == 20
    with pytest.raises(ConfigError):
        flag.replace(rollout=200)
    with pytest.raises(ConfigError) as caught:
        flag.replace(colour="red")
    assert caught.value.field == "colour"


def test_parse_changes_reads_rules_and_refuses_the_name() -> None:
    """Partial changes from JSON turn rule objects into Rules; the name cannot change."""
    changes = parse_changes({"rollout": 5, "rules": [{"attribute": "tenant", "values": ["a"]}]})
    assert changes["rules"] == [FlagRule("tenant", "in", ["a"])]
    with pytest.raises(ConfigError):
        parse_changes({"name": "y"})


def test_variant_serves_its_name_without_a_value() -> None:
    """A variant without a value serves its name."""
    assert Variant("blue").served == "blue"
    assert Variant("blue", 1, {"hex": "#00f"}).served == {"hex": "#00f"}
