"""Build the configured policies and pipelines into a ``Registry``, reporting every problem."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from buttress.config._errors import Problems, format_path, suggest
from buttress.config._fleet import build_breaker
from buttress.config._limits import LIMIT_KINDS, check_pipelines, make_limit
from buttress.config._schema import SECTIONS, Option, convert_entry
from buttress.errors import ConfigError
from buttress.fallback import Fallback
from buttress.registry import Registry

if TYPE_CHECKING:
    from buttress.config._fleet import Fleet

__all__ = ["build_entry", "build_policies", "probes_for"]

T = TypeVar("T")
Path = tuple[str | int, ...]

# A pipeline names its policies "kind.name": the section each kind lives in.
KIND_SECTIONS = {
    section.kind: name for name, section in SECTIONS.items() if name not in ("budgets", "queues")
}


def build_entry(
    path: Path,
    options: dict[str, Any],
    make: Callable[[dict[str, Any]], T],
    problems: Problems,
    warned: list[str],
    *,
    prefix: str = "",
    probes: Mapping[str, object] | None = None,
) -> T | None:
    """``make(options)``, reporting every ``ConfigError`` it raises at ``path``.

    A constructor stops at the first bad option; to report them all, the failing option is left
    out (or, if required, replaced by a valid stand-in from ``probes``) and the constructor tried
    again, until it succeeds or names something it cannot leave out. Returns None if anything
    failed. ``prefix`` is stripped from error fields (checks name theirs ``"<check>.timeout"``).
    Warnings are recorded with the path.
    """
    probes = probes or {}
    # Options that already have a problem (a missing ${VAR}...) are left out, not re-reported.
    remaining = {k: v for k, v in options.items() if not problems.failed_under((*path, k))}
    failed = problems.failed_under(path)
    for name, probe in probes.items():
        if name not in remaining:  # missing or failed to convert: reported already
            remaining[name] = probe
            failed = True
    for _ in range(len(remaining) + 1):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                built = make(remaining)
        except ConfigError as exc:
            failed = True
            field = exc.field.removeprefix(prefix) if prefix else exc.field
            key = field.split(".", 1)[0].split("[", 1)[0]
            where = (*path, *field.split(".")) if field else path
            if problems.failed_under(where):
                pass  # a consequence of a problem already reported
            elif key not in remaining and exc.value is None:
                problems.add(where, exc.expected)  # a required option is missing
            else:
                problems.config_error(where, exc)
            if key not in remaining or (key in probes and remaining[key] is probes[key]):
                return None  # nothing left to leave out
            if key in probes:
                remaining[key] = probes[key]
            else:
                del remaining[key]
            continue
        except TypeError:
            if failed:  # a required option was left out after its own error
                return None
            raise
        if failed:
            return None
        for warning in caught:
            warned.append(f"{format_path(path)}: {warning.message}")
        return built
    return None  # pragma: no cover - every round removes or replaces an option


def probes_for(options: Mapping[str, Option]) -> dict[str, object]:
    """Valid stand-ins for the required options whose kind allows one (see ``build_entry``)."""
    stand_ins: dict[str, object] = {"exceptions": Exception, "retry_on": Exception, "number": 1}
    return {
        name: stand_ins[option.kind]
        for name, option in options.items()
        if option.required and option.kind in stand_ins
    }


def build_policies(
    data: Mapping[str, Any],
    registry: Registry,
    problems: Problems,
    warned: list[str],
    fleet: Fleet | None = None,
) -> None:
    """Create every ``[breakers.*]``, ``[budgets.*]``, ``[retries.*]``, ... and pipeline
    (shared breakers and fleet rate limits on ``fleet``'s store)."""
    budgets = data.get("budgets", {})
    for section_name, section in SECTIONS.items():
        table = data.get(section_name)
        if table is None or section_name == "pipelines":
            continue
        if not isinstance(table, dict):
            problems.add((section_name,), f"must hold [{section_name}.<name>] tables")
            continue
        for name, entry in table.items():
            path: Path = (section_name, name)
            options = convert_entry(section.options, entry, path, problems)
            if options is None:
                continue
            budget = options.get("budget")
            if isinstance(budget, str) and budget not in budgets:
                hint = suggest(budget, budgets)
                problems.add((*path, "budget"), f"no [budgets.{budget}] is configured{hint}")
                del options["budget"]
            # Build even when an option failed to convert: the constructor may find more
            # problems in the others (the object is then discarded).
            make = _maker(section.kind, name, registry, fleet)
            probes = probes_for(section.options)
            build_entry(path, options, make, problems, warned, probes=probes)
    _build_pipelines(data, registry, problems)
    check_pipelines(data, registry, problems)


def _maker(
    kind: str, name: str, registry: Registry, fleet: Fleet | None
) -> Callable[[dict[str, Any]], object]:
    def make(options: dict[str, Any]) -> object:
        if kind == "breaker":
            return build_breaker(registry, name, options, fleet)
        if kind in LIMIT_KINDS:
            return make_limit(kind, name, options, registry, fleet)
        if kind == "budget":
            return registry.budget(name, **options)
        if kind == "retry":
            return registry.retry(name, **options)
        if kind == "timeout":
            rest = dict(options)
            return registry.timeout(name, rest.pop("seconds"), **rest)
        if kind == "bulkhead":
            rest = dict(options)
            return registry.bulkhead(name, rest.pop("max_concurrent"), **rest)
        return registry.add(Fallback(name=name, clock=registry.clock, **options))

    return make


def _build_pipelines(data: Mapping[str, Any], registry: Registry, problems: Problems) -> None:
    table = data.get("pipelines")
    if table is None:
        return
    if not isinstance(table, dict):
        problems.add(("pipelines",), "must be a table of named pipelines")
        return
    options = SECTIONS["pipelines"].options
    built: dict[str, Any] = {}

    def build(name: str, stack: tuple[str, ...]) -> Any:
        path: Path = ("pipelines", name)
        if name in stack:
            cycle = " -> ".join((*stack[stack.index(name) :], name))
            problems.add((*path, "policies"), f"pipelines refer to each other in a cycle: {cycle}")
            return None
        if name in built:
            return built[name]
        built[name] = None
        converted = convert_entry(options, table[name], path, problems)
        if converted is None or "policies" not in converted:
            return None
        resolved = []
        for index, ref in enumerate(converted["policies"]):
            policy = _resolve(
                ref, (*path, "policies", index), data, registry, problems, build, (*stack, name)
            )
            resolved.append(policy)
        if any(p is None for p in resolved) or problems.failed_under(path):
            return None
        try:
            built[name] = registry.pipeline(name, *resolved)
        except ConfigError as exc:
            problems.config_error((*path, "policies"), exc)
        return built[name]

    for name in table:
        build(name, ())


def _resolve(
    ref: str,
    path: Path,
    data: Mapping[str, Any],
    registry: Registry,
    problems: Problems,
    build: Callable[[str, tuple[str, ...]], Any],
    stack: tuple[str, ...],
) -> Any:
    """The policy a ``kind.name`` reference names, or None (with a problem unless it had one)."""
    kind, dot, name = ref.partition(".")
    if not dot or not name or kind not in KIND_SECTIONS:
        hint = suggest(kind, KIND_SECTIONS) if dot else ""
        kinds = ", ".join(sorted(KIND_SECTIONS))
        problems.add(path, f"{ref!r} is not a 'kind.name' reference (kinds: {kinds}){hint}")
        return None
    section = KIND_SECTIONS[kind]
    configured = data.get(section)
    if not isinstance(configured, dict) or name not in configured:
        hint = suggest(name, configured) if isinstance(configured, dict) else ""
        problems.add(path, f"{ref!r} refers to [{section}.{name}], which is not configured{hint}")
        return None
    if kind == "pipeline":
        return build(name, stack)
    try:
        return registry.get(name, kind)
    except KeyError:
        return None  # it failed to build, and that was reported at its own path
