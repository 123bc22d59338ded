"""``[degradation]`` in ``buttress.toml``: the manager's settings, rules, features and alerts.

```toml
[degradation]
hysteresis = 60                     # seconds below a level before it falls
interval = 5                        # seconds between evaluations
history = 100                       # changes kept
store = "sqlite:///.buttress/degradation.db"   # optional: keeps the override across restarts
features = { recommendations = "moderate", search = "severe" }

[[degradation.rules]]
kind = "health"                     # health | breaker | load | predicate
check = "postgres"
level = "severe"

[[degradation.rules]]
kind = "load"
name = "queue"
signal = "myapp.jobs.queue_depth"   # a callable, by dotted path
threshold = 1000
level = "minor"

[[degradation.alerts]]              # as [[health.alerts]]; default: the health alerts
kind = "webhook"
url = "https://hooks.example.com/ops"
```

The manager is registered in the configuration's ``Registry`` (kind ``degradation``), where
the ops server, the CLI and the metrics find it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from buttress._clock import Clock
from buttress.config._errors import Problems
from buttress.config._schema import resolve
from buttress.config._settings import SETTINGS_OPTIONS, AlertSettings, build_settings
from buttress.degrade._manager import DegradationManager
from buttress.degrade._rules import BreakerRule, HealthRule, LoadRule, PredicateRule, Rule
from buttress.errors import ConfigError

if TYPE_CHECKING:
    from buttress.health import HealthRegistry
    from buttress.registry import Registry
    from buttress.stores import Store

__all__ = ["DEGRADATION_KEYS", "build_degradation"]

DEGRADATION_KEYS: Final = frozenset(
    {"hysteresis", "interval", "history", "store", "features", "rules", "alerts"}
)
RULE_KEYS: Final = {
    "health": frozenset({"check", "level", "statuses", "name"}),
    "breaker": frozenset({"breaker", "level", "states", "name"}),
    "load": frozenset({"name", "signal", "threshold", "level", "per_second"}),
    "predicate": frozenset({"name", "predicate", "level"}),
}
Path = tuple[str | int, ...]


def build_degradation(
    data: Mapping[str, Any],
    registry: Registry,
    health: HealthRegistry,
    health_alerts: tuple[AlertSettings, ...],
    clock: Clock | None,
    problems: Problems,
) -> DegradationManager | None:
    """The manager ``[degradation]`` declares (None without the table, or after a problem)."""
    table = data.get("degradation")
    if table is None:
        return None
    if not isinstance(table, dict):
        problems.add(("degradation",), "must be a table")
        return None
    for key in table:
        if key not in DEGRADATION_KEYS:
            problems.unknown(("degradation", key), DEGRADATION_KEYS)
    rules = _rules(table.get("rules", []), problems)
    alerts = _alerts(table.get("alerts"), health_alerts, problems)
    features = table.get("features", {})
    if not isinstance(features, dict):
        problems.add(("degradation", "features"), "must be a table of feature = level")
        features = {}
    store = _store(table.get("store"), problems)
    if problems.failed_under(("degradation",)):
        return None
    options = {k: table[k] for k in ("hysteresis", "interval", "history") if k in table}
    try:
        return DegradationManager(
            rules,
            features=features,
            sinks=[alert.sink() for alert in alerts],
            health=health,
            registry=registry,
            store=store,
            clock=clock,
            **options,
        )
    except ConfigError as exc:
        problems.config_error(("degradation", *exc.field.split(".")), exc)
        return None


def _rules(value: object, problems: Problems) -> list[Rule]:
    if not isinstance(value, list):
        problems.add(("degradation", "rules"), "must be an array of tables: [[degradation.rules]]")
        return []
    rules = []
    for index, entry in enumerate(value):
        rule = _rule(entry, ("degradation", "rules", index), problems)
        if rule is not None:
            rules.append(rule)
    return rules


def _rule(entry: object, path: Path, problems: Problems) -> Rule | None:
    if not isinstance(entry, dict):
        problems.add(path, f"must be a table with a kind, got {entry!r}")
        return None
    kind = entry.get("kind")
    if kind not in RULE_KEYS:
        problems.add((*path, "kind"), f"must be one of {', '.join(RULE_KEYS)}, got {kind!r}")
        return None
    allowed = RULE_KEYS[kind]
    options = {k: v for k, v in entry.items() if k != "kind"}
    for key in options:
        if key not in allowed:
            problems.unknown((*path, key), allowed, f"option of a {kind} rule")
    for key in ("signal", "predicate"):
        if key in options and key in allowed:
            found = _callable(options[key], (*path, key), problems)
            if found is None:
                return None
            options[key] = found
    required = {
        "health": ("check", "level"),
        "breaker": ("breaker", "level"),
        "load": ("name", "signal", "threshold", "level"),
        "predicate": ("name", "predicate", "level"),
    }[kind]
    for key in required:
        if key not in options:
            problems.add((*path, key), f"is required for a {kind} rule")
    if problems.failed_under(path):
        return None
    makers: dict[str, Callable[..., Rule]] = {
        "health": lambda check, level, **o: HealthRule(check, level, **o),
        "breaker": lambda breaker, level, **o: BreakerRule(breaker, level, **o),
        "load": lambda name, **o: LoadRule(name, **o),
        "predicate": lambda name, predicate, level: PredicateRule(name, predicate, level),
    }
    try:
        return makers[kind](**options)
    except ConfigError as exc:
        problems.config_error((*path, *exc.field.split(".")), exc)
    except TypeError as exc:
        problems.add(path, str(exc))
    return None


def _callable(value: object, path: Path, problems: Problems) -> Callable[..., Any] | None:
    if not isinstance(value, str):
        problems.add(path, f"must be a dotted path to a callable, got {value!r}")
        return None
    try:
        found = resolve(value)
    except LookupError as exc:
        problems.add(path, str(exc))
        return None
    if not callable(found):
        problems.add(path, f"{value!r} is not callable")
        return None
    return found


def _alerts(
    value: object, default: tuple[AlertSettings, ...], problems: Problems
) -> tuple[AlertSettings, ...]:
    if value is None:
        return default
    if not isinstance(value, list):
        problems.add(
            ("degradation", "alerts"), "must be an array of tables: [[degradation.alerts]]"
        )
        return ()
    alerts = []
    for index, table in enumerate(value):
        path = ("degradation", "alerts", index)
        alert = build_settings(AlertSettings, SETTINGS_OPTIONS["alert"], table, path, problems)
        if alert is not None:
            alerts.append(alert)
    return tuple(alerts)


def _store(value: object, problems: Problems) -> Store | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(("degradation", "store"), f"must be a store URL, got {value!r}")
        return None
    from buttress.stores import store_from_url

    try:
        return store_from_url(value)
    except (ConfigError, ImportError) as exc:
        problems.add(("degradation", "store"), str(exc))
        return None
