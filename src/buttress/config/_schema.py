"""The schema, derived from the policies' own option dataclasses, and value conversion.

Allowed keys are the fields of ``BreakerOptions``, ``RetryOptions``, ``TimeoutOptions``... (or a
constructor's parameters where a policy has no options dataclass), so a new option is configurable
the day it is added. The field's annotation says how a TOML value is converted: exception names
become types, a table becomes a ``Backoff``, a dotted path becomes a callable.
"""

from __future__ import annotations

import builtins
import dataclasses
import importlib
import inspect
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from buttress import errors as _errors
from buttress.breaker import BreakerOptions
from buttress.bulkhead import BulkheadOptions
from buttress.config._errors import Problems
from buttress.errors import ConfigError
from buttress.fallback import FallbackOptions
from buttress.pipeline import PipelineOptions
from buttress.ratelimit import AdaptiveConcurrency, AdaptiveThrottle, WorkQueue
from buttress.retry import Backoff, RetryBudget, RetryOptions, RetryRule
from buttress.timeout import TimeoutOptions

__all__ = [
    "INVALID",
    "SECTIONS",
    "Option",
    "Section",
    "convert",
    "convert_entry",
    "is_table",
    "options_of",
    "params_of",
]

INVALID: Final = object()
"""What a converter returns for a value it reported as a problem."""

_NUMBER = re.compile(r"\b(int|float|timedelta|Duration)\b")


@dataclass(frozen=True, slots=True)
class Option:
    """One configurable option: its name, how its value converts, and whether it is required."""

    name: str
    kind: str
    """exceptions, retry_on, backoff, callable, budget, policies, bool, number, any."""
    required: bool = False


def _kind(annotation: object, default: object) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    for marker, kind in (
        ("RetrySpec", "retry_on"),
        ("ExceptionSpec", "exceptions"),
        ("Backoff", "backoff"),
        ("RetryBudget", "budget"),
        ("Callable", "callable"),
        ("Policy", "policies"),
    ):
        if marker in text:
            return kind
    if text == "bool":
        return "bool"
    if _NUMBER.search(text) or (isinstance(default, int | float) and not isinstance(default, bool)):
        return "number"
    return "any"


def options_of(cls: type[Any]) -> dict[str, Option]:
    """The options of a frozen options dataclass, in field order."""
    found = {}
    for item in dataclasses.fields(cls):
        required = item.default is dataclasses.MISSING and (
            item.default_factory is dataclasses.MISSING
        )
        default = None if required else item.default
        found[item.name] = Option(item.name, _kind(item.type, default), required)
    return found


def params_of(fn: Callable[..., Any], skip: frozenset[str]) -> dict[str, Option]:
    """The options of a constructor, from its parameters (``skip`` the runtime ones)."""
    found = {}
    # A class with a __new__ (RetryBudget picks its shared twin there) shows __new__'s
    # signature; the options are __init__'s.
    target = fn.__init__ if isinstance(fn, type) else fn  # type: ignore[misc]
    for param in inspect.signature(target).parameters.values():
        if param.name in skip or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        required = param.default is param.empty
        default = None if required else param.default
        found[param.name] = Option(param.name, _kind(param.annotation, default), required)
    return found


@dataclass(frozen=True, slots=True)
class Section:
    """A ``[<section>.<name>]`` kind of entry: the singular kind and its options."""

    kind: str
    options: Mapping[str, Option]


# Rate limits and load shedding (built by ``_limits.py``): a limiter's keys are its algorithm's
# parameters; [concurrency.*] is a ConcurrencyLimiter (``max``) or an AdaptiveConcurrency.
_RUNTIME = frozenset({"self", "name", "clock", "rng"})
LIMIT_OPTIONS: Final = {
    "algorithm": Option("algorithm", "any", required=True),
    **{k: Option(k, "number") for k in ("rate", "burst", "capacity", "limit", "window")},
    "max_wait": Option("max_wait", "number"),
    "keyed": Option("keyed", "bool"),
    "store": Option("store", "any"),
    "lease": Option("lease", "any"),
}
CONCURRENCY_OPTIONS: Final = {
    "algorithm": Option("algorithm", "any"),
    "max": Option("max", "number"),
    **params_of(AdaptiveConcurrency, _RUNTIME | {"algorithm"}),
}

SECTIONS: Final[Mapping[str, Section]] = {
    # ``shared = true``: fleet-wide through the [fleet] store (see ``_fleet.py``).
    "breakers": Section(
        "breaker", {**options_of(BreakerOptions), "shared": Option("shared", "bool")}
    ),
    # A shared store (and its sync interval) is an object, not a value a file can hold yet.
    "budgets": Section(
        "budget",
        params_of(RetryBudget, frozenset({"self", "name", "clock", "shared", "sync_interval"})),
    ),
    "retries": Section("retry", options_of(RetryOptions)),
    "timeouts": Section("timeout", options_of(TimeoutOptions)),
    "bulkheads": Section("bulkhead", options_of(BulkheadOptions)),
    "fallbacks": Section("fallback", options_of(FallbackOptions)),
    "limits": Section("limiter", LIMIT_OPTIONS),
    "concurrency": Section("concurrency", CONCURRENCY_OPTIONS),
    "throttles": Section("throttle", params_of(AdaptiveThrottle, _RUNTIME)),
    "queues": Section("queue", params_of(WorkQueue, _RUNTIME)),  # not pipeline policies
    "pipelines": Section("pipeline", options_of(PipelineOptions)),
}
"""Every section of named policies, keyed by its table name, in the order they are built."""

RULE_OPTIONS: Final = options_of(RetryRule)

# Tables and arrays of tables below the top level that are not named entries.
_TABLES = frozenset({("health", "checks"), ("health", "alerts"), ("server", "tokens")})


def is_table(path: tuple[str, ...]) -> bool:
    """Whether the dict at ``path`` is a structural table (merged key by key) or an option value."""
    if len(path) == 1:
        return True
    if len(path) == 2:
        return path[0] in SECTIONS or path[0] == "profiles" or path in _TABLES
    return path[0] == "health" and path[1] == "checks" and len(path) == 3


# -- conversion -------------------------------------------------------------------------------


def resolve(name: str) -> object:
    """The object a name refers to: a builtin, a ``buttress.errors`` name, or ``module.attr``."""
    if "." not in name:
        for namespace in (builtins, _errors):
            if isinstance(getattr(namespace, name, None), type):
                return getattr(namespace, name)
        raise LookupError(f"no builtin or buttress exception named {name!r} (use module.Name)")
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            found: object = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                continue
            raise LookupError(f"cannot import {module_name!r}: {exc}") from None
        except Exception as exc:  # an import that fails for another reason
            raise LookupError(f"cannot import {module_name!r}: {exc}") from None
        for attribute in parts[cut:]:
            try:
                found = getattr(found, attribute)
            except AttributeError:
                raise LookupError(f"{module_name!r} has no attribute {attribute!r}") from None
        return found
    raise LookupError(f"cannot import {parts[0]!r}")


def _exception_type(value: object, path: tuple[str | int, ...], problems: Problems) -> object:
    if not isinstance(value, str):
        problems.add(path, f"must be an exception name like 'ConnectionError', got {value!r}")
        return INVALID
    try:
        found = resolve(value)
    except LookupError as exc:
        problems.add(path, str(exc))
        return INVALID
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        problems.add(path, f"{value!r} is not an exception type")
        return INVALID
    return found


def _exceptions(value: object, path: tuple[str | int, ...], problems: Problems) -> object:
    """A name (an exception type or a predicate ``exc -> bool``) or a list of exception names."""
    if isinstance(value, str):
        try:
            found = resolve(value)
        except LookupError as exc:
            problems.add(path, str(exc))
            return INVALID
        if isinstance(found, type) and issubclass(found, BaseException):
            return found
        if callable(found) and not isinstance(found, type):
            return found  # a predicate exc -> bool
        problems.add(path, f"{value!r} is neither an exception type nor a predicate")
        return INVALID
    if isinstance(value, list):
        types = [_exception_type(item, (*path, i), problems) for i, item in enumerate(value)]
        return INVALID if INVALID in types else tuple(types)
    problems.add(path, f"must be an exception name or a list of them, got {value!r}")
    return INVALID


def _retry_on(value: object, path: tuple[str | int, ...], problems: Problems) -> object:
    """Like ``_exceptions``, or a list of rule tables ``{on=..., attempts=..., backoff=...}``."""
    if not (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
        return _exceptions(value, path, problems)
    rules = []
    for index, table in enumerate(value):
        here = (*path, index)
        options = convert_entry(RULE_OPTIONS, table, here, problems)
        if options is None or problems.failed_under(here):
            rules.append(INVALID)
            continue
        try:
            rules.append(RetryRule(**options))
        except ConfigError as exc:
            field = exc.field.removeprefix("RetryRule.")
            problems.config_error((*here, field), exc)
            rules.append(INVALID)
    return INVALID if INVALID in rules else rules


def _backoff(value: object, path: tuple[str | int, ...], problems: Problems) -> object:
    """A table ``{kind="exponential", base=0.1, ...}`` or a kind name, as a ``Backoff``."""
    table = {"kind": value} if isinstance(value, str) else value
    if not isinstance(table, dict):
        problems.add(path, f'must be a table like {{kind = "exponential"}}, got {value!r}')
        return INVALID
    kind = table.get("kind")
    factory = getattr(Backoff, kind, None) if isinstance(kind, str) else None
    kinds = ("constant", "linear", "exponential", "fibonacci", "decorrelated")
    if kind not in kinds or factory is None:
        problems.add((*path, "kind"), f"must be one of {', '.join(kinds)}, got {kind!r}")
        return INVALID
    allowed = params_of(factory, frozenset({"cls"}))
    params = {}
    for key, item in table.items():
        if key == "kind":
            continue
        if key not in allowed:
            problems.unknown((*path, key), allowed, f"{kind} backoff parameter")
            return INVALID
        params[key] = item if key == "jitter" else _number(item)
    try:
        return Backoff.from_dict({"kind": kind, **params})
    except ConfigError as exc:
        problems.config_error((*path, exc.field), exc)
        return INVALID


def _callable(value: object, path: tuple[str | int, ...], problems: Problems) -> object:
    if not isinstance(value, str):
        problems.add(path, f"must be a dotted path to a function, got {value!r}")
        return INVALID
    try:
        found = resolve(value)
    except LookupError as exc:
        problems.add(path, str(exc))
        return INVALID
    if not callable(found):
        problems.add(path, f"{value!r} is not callable")
        return INVALID
    return found


def _number(value: object) -> object:
    """A string holding a number (from ``${VAR}``) as that number; anything else unchanged."""
    if isinstance(value, str):
        try:
            parsed = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            return value
        if isinstance(parsed, int | float) and not isinstance(parsed, bool):
            return parsed
    return value


def _bool(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def convert(option: Option, value: object, path: tuple[str | int, ...], problems: Problems) -> Any:
    """``value`` converted for ``option``, or ``INVALID`` after recording a problem."""
    kind = option.kind
    if kind == "exceptions":
        return _exceptions(value, path, problems)
    if kind == "retry_on":
        return _retry_on(value, path, problems)
    if kind == "backoff":
        return _backoff(value, path, problems)
    if kind == "callable":
        return _callable(value, path, problems)
    if kind == "number":
        return _number(value)
    if kind == "bool":
        return _bool(value)
    if kind in ("budget", "policies") and not _is_reference(value, kind):
        expected = (
            "a budget name from [budgets]"
            if kind == "budget"
            else "a list of 'kind.name' references, outermost first"
        )
        problems.add(path, f"must be {expected}, got {value!r}")
        return INVALID
    return value


def _is_reference(value: object, kind: str) -> bool:
    if kind == "budget":
        return isinstance(value, str) and bool(value)
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def convert_entry(
    options: Mapping[str, Option],
    entry: object,
    path: tuple[str | int, ...],
    problems: Problems,
) -> dict[str, Any] | None:
    """An entry's options converted; unknown keys and missing required ones are problems.

    Returns None when ``entry`` is not a table. Options that failed are left out.
    """
    if not isinstance(entry, dict):
        problems.add(path, f"must be a table, got {entry!r}")
        return None
    converted = {}
    for key, value in entry.items():
        option = options.get(key)
        if option is None:
            problems.unknown((*path, key), options)
            continue
        result = convert(option, value, (*path, key), problems)
        if result is not INVALID:
            converted[key] = result
    for name, option in options.items():
        if option.required and name not in entry:
            problems.add((*path, name), "is required")
    return converted
