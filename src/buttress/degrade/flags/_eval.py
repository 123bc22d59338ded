"""Evaluating a flag: ``decide`` (the reference, with the reason) and the compiled hot path.

``decide(flag, attributes, level, failing)`` is the definition, in order: killed, disabled, a
required health check failing, the degradation level at or above ``off_at`` (all four: off);
then the first matching rule; then the rollout. A subject is in a rollout of ``p`` percent when
Unleash's normalized value of ``"{group}:{subject}"`` is ``<= p``.

``compile_check`` and ``compile_picker`` build, once per flag and change, closures that give the
same answers with the least work per call: a flag that is off, or on for everyone, is a
constant; a rollout hashes a subject once and keeps the result in a bounded per-flag cache; rule
values are frozensets. The degradation level is the only input read per call (a property of the
level source), since it can change at any moment; the health of required checks is folded in
at compile time (the store recompiles when it changes). A property test checks that the compiled
closures agree with ``decide``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from buttress.degrade._levels import DegradationLevel, LevelSource
from buttress.degrade.flags._hash import VARIANT_SEED, hash_text
from buttress.degrade.flags._model import Flag, as_text

__all__ = [
    "DEGRADED",
    "DISABLED",
    "KILLED",
    "NOT_FOUND",
    "SPLIT",
    "STATIC",
    "TARGETING_MATCH",
    "UNHEALTHY",
    "Check",
    "Evaluation",
    "Picker",
    "compile_check",
    "compile_picker",
    "decide",
    "in_rollout",
    "pick_variant",
]

STATIC: Final = "STATIC"
"""On for every subject (rollout 100, no rule matched)."""
SPLIT: Final = "SPLIT"
"""The percentage rollout decided."""
TARGETING_MATCH: Final = "TARGETING_MATCH"
"""A rule matched."""
DISABLED: Final = "DISABLED"
"""The flag is not enabled."""
KILLED: Final = "KILLED"
"""The kill switch is on."""
DEGRADED: Final = "DEGRADED"
"""Off on its own: the degradation level is at or above the flag's ``off_at``."""
UNHEALTHY: Final = "UNHEALTHY"
"""Off on its own: a health check the flag requires is failing."""
NOT_FOUND: Final = "NOT_FOUND"
"""No flag has this name; the caller's default is served."""

Check = Callable[[Mapping[str, object]], bool]
Picker = Callable[[Mapping[str, object]], "str | None"]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome for one subject: ``enabled``, the ``variant`` served (None for a boolean
    flag or when off), its ``value`` (a variant's value, else ``enabled``), the ``reason``
    (one of this module's constants, OpenFeature's names where they exist) and the index of
    the matching ``rule``."""

    flag: str
    enabled: bool
    variant: str | None
    value: Any
    reason: str
    rule: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The evaluation as plain data."""
        return {
            "flag": self.flag,
            "enabled": self.enabled,
            "variant": self.variant,
            "value": self.value,
            "reason": self.reason,
            "rule": self.rule,
        }


def in_rollout(group: str, subject: object, percent: int) -> bool:
    """Whether ``subject`` is in a rollout of ``percent`` in ``group`` (no subject: only 100)."""
    if percent >= 100:
        return True
    if percent <= 0 or subject is None:
        return False
    return hash_text(f"{group}:{as_text(subject)}", 0) % 100 + 1 <= percent


def pick_variant(flag: Flag, subject: object) -> str | None:
    """The variant for ``subject`` by weight (Unleash's variant hash; no subject hashes as "")."""
    variants = flag.variants
    if not variants:
        return None
    total = sum(v.weight for v in variants)
    text = "" if subject is None else as_text(subject)
    target = hash_text(f"{flag.bucket_group}:{text}", VARIANT_SEED) % total + 1
    seen = 0
    for variant in variants:
        seen += variant.weight
        if seen >= target:
            return variant.name
    return variants[-1].name  # unreachable: the weights add up to total


def _served(flag: Flag, variant: str | None, enabled: bool) -> Any:
    if variant is None:
        return enabled
    return next(v.served for v in flag.variants if v.name == variant)


def decide(
    flag: Flag,
    attributes: Mapping[str, object],
    level: DegradationLevel | None = None,
    failing: frozenset[str] = frozenset(),
) -> Evaluation:
    """The reference evaluation of ``flag`` for a subject with ``attributes``, at degradation
    ``level`` (None: unknown, never degraded) with the health checks in ``failing`` failing."""
    off_reason = None
    if flag.killed:
        off_reason = KILLED
    elif not flag.enabled:
        off_reason = DISABLED
    elif flag.requires and not failing.isdisjoint(flag.requires):
        off_reason = UNHEALTHY
    elif flag.off_at is not None and level is not None and level >= flag.off_at:
        off_reason = DEGRADED
    if off_reason is not None:
        return Evaluation(flag.name, False, None, _served(flag, None, False), off_reason)
    subject = attributes.get(flag.stickiness)
    group = flag.bucket_group
    for index, rule in enumerate(flag.rules):
        if rule.matches(attributes):
            on = rule.enabled and in_rollout(
                group, subject, 100 if rule.rollout is None else rule.rollout
            )
            variant = (rule.variant or pick_variant(flag, subject)) if on else None
            served = _served(flag, variant, on)
            return Evaluation(flag.name, on, variant, served, TARGETING_MATCH, index)
    on = in_rollout(group, subject, flag.rollout)
    variant = pick_variant(flag, subject) if on else None
    reason = STATIC if flag.rollout >= 100 else SPLIT
    return Evaluation(flag.name, on, variant, _served(flag, variant, on), reason)


# -- the compiled hot path ---------------------------------------------------------------------


def _on(attributes: Mapping[str, object]) -> bool:
    return True


def _off(attributes: Mapping[str, object]) -> bool:
    return False


def _none(attributes: Mapping[str, object]) -> str | None:
    return None


def _rollout(stickiness: str, group: str, percent: int, cache_size: int) -> Check:
    if percent >= 100:
        return _on
    if percent <= 0:
        return _off
    prefix = f"{group}:"
    cache: dict[str, bool] = {}
    fast_hash = hash_text

    def rollout(attributes: Mapping[str, object]) -> bool:
        subject = attributes.get(stickiness)
        if subject is None:
            return False
        if subject.__class__ is not str:
            subject = as_text(subject)
        hit = cache.get(subject)
        if hit is None:
            hit = fast_hash(prefix + subject, 0) % 100 + 1 <= percent
            if len(cache) >= cache_size:
                cache.clear()
            cache[subject] = hit
        return hit

    return rollout


def _outcome(check: Check, index: int, namespace: dict[str, object]) -> str:
    """The source of a rule's (or the fallback's) answer: a constant, or a call."""
    if check is _on:
        return "True"
    if check is _off:
        return "False"
    namespace[f"outcome{index}"] = check
    return f"outcome{index}(attributes)"


def _core(flag: Flag, cache_size: int) -> Check:
    """The rules and the rollout, for a flag known to be enabled.

    The rules are compiled to straight-line Python (as ``dataclasses`` builds ``__init__``):
    one ``get`` and one set lookup per rule, constant answers inlined, no loop. Attribute
    names enter the source only as ``repr`` literals; values and closures are passed in the
    namespace, never as text.
    """
    group, stickiness = flag.bucket_group, flag.stickiness
    fallback = _rollout(stickiness, group, flag.rollout, cache_size)
    if not flag.rules:
        return fallback
    namespace: dict[str, object] = {"as_text": as_text, "str": str}
    lines = ["def targeted(attributes):", "    get = attributes.get"]
    for index, rule in enumerate(flag.rules):
        percent = 100 if rule.rollout is None else rule.rollout
        check = _rollout(stickiness, group, percent, cache_size) if rule.enabled else _off
        answer = _outcome(check, index, namespace)
        namespace[f"values{index}"] = frozenset(rule.values)
        lines.append(f"    value = get({rule.attribute!r})")
        text = "(value if value.__class__ is str else as_text(value))"
        if rule.op == "not_in":
            lines.append(f"    if value is None or {text} not in values{index}:")
            lines.append(f"        return {answer}")
        else:
            lines.append("    if value is not None:")
            lines.append(f"        if {text} in values{index}:")
            lines.append(f"            return {answer}")
    lines.append(f"    return {_outcome(fallback, len(flag.rules), namespace)}")
    exec("\n".join(lines), namespace)  # our own source, see the docstring
    targeted: Check = namespace["targeted"]  # type: ignore[assignment]
    return targeted


def _is_off(flag: Flag, failing: frozenset[str]) -> bool:
    return (
        flag.killed
        or not flag.enabled
        or (bool(flag.requires) and not failing.isdisjoint(flag.requires))
    )


def compile_check(
    flag: Flag,
    levels: LevelSource | None = None,
    failing: frozenset[str] = frozenset(),
    cache_size: int = 4096,
) -> Check:
    """A closure answering ``decide(flag, attributes, levels.level, failing).enabled``."""
    if _is_off(flag, failing):
        return _off
    core = _core(flag, cache_size)
    off_at = flag.off_at
    if off_at is None or levels is None or core is _off:
        return core
    source = levels
    if core is _on:

        def below_level(attributes: Mapping[str, object]) -> bool:
            return source.level < off_at

        return below_level

    def below_level_and(attributes: Mapping[str, object]) -> bool:
        return source.level < off_at and core(attributes)

    return below_level_and


def compile_picker(
    flag: Flag,
    check: Check,
    levels: LevelSource | None = None,
    failing: frozenset[str] = frozenset(),
    cache_size: int = 4096,
) -> Picker:
    """A closure answering ``decide(...).variant``; ``check`` is the flag's compiled check."""
    if not flag.variants or check is _off:
        return _none
    if any(rule.variant is not None for rule in flag.rules):

        def by_rules(attributes: Mapping[str, object]) -> str | None:
            level = None if levels is None else levels.level
            return decide(flag, attributes, level, failing).variant

        return by_rules
    stickiness = flag.stickiness
    cache: dict[object, str | None] = {}

    def picker(attributes: Mapping[str, object]) -> str | None:
        if not check(attributes):
            return None
        subject = attributes.get(stickiness)
        key = subject if subject.__class__ is str or subject is None else as_text(subject)
        if key in cache:
            return cache[key]
        chosen = pick_variant(flag, key)
        if len(cache) >= cache_size:
            cache.clear()
        cache[key] = chosen
        return chosen

    return picker
