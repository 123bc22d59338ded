"""What a flag is: ``Flag``, its targeting ``FlagRule``s and weighted ``Variant``s (frozen).

Every constructor validates its arguments and raises ``ConfigError`` naming the field; the
``from_dict`` readers (JSON import, the admin API, ``buttress.toml``) name the path of the
field, as in ``flags.checkout.rules[0].op``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from buttress.degrade._levels import DegradationLevel
from buttress.errors import ConfigError

__all__ = ["OPERATORS", "Flag", "FlagRule", "Variant", "as_text", "parse_changes"]

OPERATORS = ("in", "not_in", "equals")
"""The operators of a rule: the attribute is one of the values, none of them, or the one."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_NAME_RULE = "must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
MAX_WEIGHT = 1_000_000


def as_text(value: object) -> str:
    """An attribute value as the text rules and bucketing compare (``true``/``false`` for bools)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value if isinstance(value, str) else str(value)


def _name(field: str, value: object) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ConfigError(field, value, _NAME_RULE)
    return value


def _bool(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(field, value, "must be true or false")
    return value


def _percent(field: str, value: object) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ConfigError(field, value, "must be a whole percentage from 0 to 100")
    return value


def _attribute(field: str, value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 128:
        raise ConfigError(field, value, "must be an attribute name of 1-128 characters")
    return value


def _strings(field: str, value: object, *, numbers: bool = True) -> tuple[str, ...]:
    """A string or a list of them as a tuple; with ``numbers``, integers too, as text."""
    kinds = (str, int) if numbers else (str,)
    items = (value,) if isinstance(value, kinds) else value
    if isinstance(items, Iterable) and not isinstance(items, Mapping | bytes):
        listed = tuple(items)
        if all(isinstance(v, kinds) and not isinstance(v, bool) for v in listed):
            return tuple(as_text(v) for v in listed)
    raise ConfigError(field, value, "must be a string or a list of strings")


@dataclass(frozen=True, slots=True, init=False)
class Variant:
    """One of a variant flag's values: ``name``, ``weight`` (its share among the variants,
    default 1; 0: only rules serve it) and ``value`` (any JSON value; default: the name)."""

    name: str
    weight: int
    value: Any

    def __init__(self, name: str, weight: int = 1, value: Any = None) -> None:
        object.__setattr__(self, "name", _name("name", name))
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise ConfigError("weight", weight, f"must be an integer from 0 to {MAX_WEIGHT}")
        object.__setattr__(self, "weight", weight)
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ConfigError("value", value, "must be a JSON value") from None
        object.__setattr__(self, "value", value)

    @property
    def served(self) -> Any:
        """What the variant serves: ``value``, or the name when it has none."""
        return self.name if self.value is None else self.value

    def to_dict(self) -> dict[str, Any]:
        """The variant as plain data."""
        return {"name": self.name, "weight": self.weight, "value": self.value}


@dataclass(frozen=True, slots=True, init=False)
class FlagRule:
    """Targeting: when ``attribute`` is ``in`` (or ``not_in``, or ``equals``) ``values``, the
    flag is ``enabled`` (default True) for the subject, for all of them or for ``rollout``
    percent of them, serving ``variant`` if given. A missing attribute is in no list (so it
    matches ``not_in``). The first matching rule of a flag wins."""

    attribute: str
    op: str
    values: tuple[str, ...]
    enabled: bool
    rollout: int | None
    variant: str | None

    def __init__(
        self,
        attribute: str,
        op: str = "in",
        values: str | int | Iterable[str | int] = (),
        *,
        enabled: bool = True,
        rollout: int | None = None,
        variant: str | None = None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "attribute", _attribute("attribute", attribute))
        if op not in OPERATORS:
            raise ConfigError("op", op, f"must be one of {', '.join(OPERATORS)}")
        set_(self, "op", op)
        texts = _strings("values", values)
        if not texts or (op == "equals" and len(texts) != 1):
            expected = "must be exactly one value" if op == "equals" else "must not be empty"
            raise ConfigError("values", values, expected)
        set_(self, "values", texts)
        set_(self, "enabled", _bool("enabled", enabled))
        set_(self, "rollout", None if rollout is None else _percent("rollout", rollout))
        set_(self, "variant", None if variant is None else _name("variant", variant))

    def matches(self, attributes: Mapping[str, object]) -> bool:
        """Whether the rule applies to a subject with these ``attributes``."""
        value = attributes.get(self.attribute)
        found = value is not None and as_text(value) in self.values
        return not found if self.op == "not_in" else found

    def to_dict(self) -> dict[str, Any]:
        """The rule as plain data."""
        return {
            "attribute": self.attribute,
            "op": self.op,
            "values": list(self.values),
            "enabled": self.enabled,
            "rollout": self.rollout,
            "variant": self.variant,
        }


@dataclass(frozen=True, slots=True, init=False)
class Flag:
    """A feature flag (see ``docs/flags.md``).

    ``Flag(name, *, enabled=False, description="", rollout=100, stickiness="user",
    group=None, rules=(), variants=(), off_at=None, requires=(), killed=False)``: off until
    ``enabled``; then on for ``rollout`` percent of subjects (bucketed by the ``stickiness``
    attribute and ``group``, default the name, as Unleash does) unless a ``rule`` matches first.
    With ``variants`` it is a variant flag. It switches off on its own while the degradation
    level is at or above ``off_at`` or a health check in ``requires`` fails; ``killed`` (the
    kill switch) keeps it off whatever else is set.
    """

    name: str
    enabled: bool
    description: str
    rollout: int
    stickiness: str
    group: str | None
    rules: tuple[FlagRule, ...]
    variants: tuple[Variant, ...]
    off_at: DegradationLevel | None
    requires: tuple[str, ...]
    killed: bool

    def __init__(
        self,
        name: str,
        *,
        enabled: bool = False,
        description: str = "",
        rollout: int = 100,
        stickiness: str = "user",
        group: str | None = None,
        rules: Iterable[FlagRule] = (),
        variants: Iterable[Variant] = (),
        off_at: DegradationLevel | str | None = None,
        requires: str | Iterable[str] = (),
        killed: bool = False,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "name", _name("name", name))
        set_(self, "enabled", _bool("enabled", enabled))
        if not isinstance(description, str) or len(description) > 1000:
            raise ConfigError("description", description, "must be text of at most 1000 chars")
        set_(self, "description", description)
        set_(self, "rollout", _percent("rollout", rollout))
        set_(self, "stickiness", _attribute("stickiness", stickiness))
        if group is not None and (not isinstance(group, str) or not group):
            raise ConfigError("group", group, "must be a non-empty string (default: the name)")
        set_(self, "group", group)
        set_(self, "rules", _items("rules", rules, FlagRule))
        set_(self, "variants", _items("variants", variants, Variant))
        level = None if off_at is None else DegradationLevel.from_name(off_at)
        if level is DegradationLevel.NORMAL:
            raise ConfigError("off_at", off_at, "must be above normal (or none)")
        set_(self, "off_at", level)
        set_(self, "requires", _strings("requires", requires, numbers=False))
        set_(self, "killed", _bool("killed", killed))
        self._check_variants()

    def _check_variants(self) -> None:
        names = [v.name for v in self.variants]
        for name in names:
            if names.count(name) > 1:
                raise ConfigError("variants", name, "must have unique names")
        if self.variants and not sum(v.weight for v in self.variants):
            raise ConfigError("variants", [v.weight for v in self.variants], "need a weight > 0")
        for index, rule in enumerate(self.rules):
            if rule.variant is not None and rule.variant not in names:
                raise ConfigError(f"rules[{index}].variant", rule.variant, "is not a variant")

    @property
    def kind(self) -> str:
        """``"variant"`` when the flag has variants, else ``"boolean"``."""
        return "variant" if self.variants else "boolean"

    @property
    def bucket_group(self) -> str:
        """The group its subjects are bucketed in (Unleash's ``groupId``): ``group`` or the name."""
        return self.name if self.group is None else self.group

    def replace(self, **changes: Any) -> Flag:
        """A copy with ``changes`` (validated); ConfigError for a field that does not exist."""
        known = {f.name for f in fields(self)}
        for key in changes:
            if key not in known:
                raise ConfigError(key, changes[key], f"is not a flag field ({', '.join(known)})")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The flag as plain JSON-ready data (what export and the admin API show)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "enabled": self.enabled,
            "description": self.description,
            "rollout": self.rollout,
            "stickiness": self.stickiness,
            "group": self.group,
            "rules": [rule.to_dict() for rule in self.rules],
            "variants": [variant.to_dict() for variant in self.variants],
            "off_at": None if self.off_at is None else self.off_at.label,
            "requires": list(self.requires),
            "killed": self.killed,
        }

    @classmethod
    def from_dict(cls, data: object, *, path: str = "flag", name: str | None = None) -> Flag:
        """A flag from plain data (``to_dict``'s form; ``kind`` is ignored); ConfigError naming
        ``path.field`` otherwise. ``name`` fills in a missing ``name``."""
        if not isinstance(data, Mapping):
            raise ConfigError(path, data, "must be an object (a table) of flag fields")
        table = dict(data)
        table.pop("kind", None)
        if name is not None:
            table.setdefault("name", name)
        known = {f.name for f in fields(cls)}
        for key in table:
            if key not in known:
                raise ConfigError(f"{path}.{key}", table[key], "is not a flag field")
        if "name" not in table:
            raise ConfigError(f"{path}.name", None, "is required")
        for key, kind in (("rules", FlagRule), ("variants", Variant)):
            if key in table:
                table[key] = _parse_items(f"{path}.{key}", table[key], kind)
        try:
            return cls(**table)
        except ConfigError as exc:
            raise ConfigError(f"{path}.{exc.field}", exc.value, exc.expected) from None
        except TypeError as exc:
            raise ConfigError(path, data, str(exc)) from None


def parse_changes(data: Mapping[str, Any], *, path: str = "flag") -> dict[str, Any]:
    """Changes to a flag from plain data (``rules`` and ``variants`` as lists of objects) for
    ``Flag.replace``; ConfigError for ``name``, ``kind`` or a field that does not exist."""
    known = {f.name for f in fields(Flag)} - {"name"}
    changes = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{path}.{key}", value, "is not a field that can be changed")
        if key == "rules":
            value = _parse_items(f"{path}.rules", value, FlagRule)
        elif key == "variants":
            value = _parse_items(f"{path}.variants", value, Variant)
        changes[key] = value
    return changes


def _items(field: str, value: object, kind: type[Any]) -> tuple[Any, ...]:
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping):
        items = tuple(value)
        for index, item in enumerate(items):
            if not isinstance(item, kind):
                raise ConfigError(f"{field}[{index}]", item, f"must be a {kind.__name__}")
        return items
    raise ConfigError(field, value, f"must be a list of {kind.__name__}s")


def _parse_items(path: str, value: object, kind: type[Any]) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(path, value, "must be a list of objects")
    parsed = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if isinstance(item, kind):
            parsed.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ConfigError(where, item, "must be an object")
        try:
            parsed.append(kind(**item))
        except ConfigError as exc:
            raise ConfigError(f"{where}.{exc.field}", exc.value, exc.expected) from None
        except TypeError as exc:
            raise ConfigError(where, dict(item), str(exc)) from None
    return parsed
