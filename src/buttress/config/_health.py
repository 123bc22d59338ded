"""``[health]``: the checks (built by ``buttress.health.checks.make_check``), monitor, alerts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from buttress._clock import Clock
from buttress.config._build import build_entry
from buttress.config._errors import Problems, suggest
from buttress.config._schema import Option, convert
from buttress.config._settings import (
    SETTINGS_OPTIONS,
    AlertSettings,
    MonitorSettings,
    build_settings,
)
from buttress.health import HealthRegistry
from buttress.health.checks import CHECK_KINDS, breakers_check, check_options, make_check
from buttress.registry import Registry

__all__ = ["HEALTH_KEYS", "build_health"]

HEALTH_KEYS = frozenset({*SETTINGS_OPTIONS["monitor"], "checks", "alerts"})
"""The keys of ``[health]``: the monitor's settings, ``checks`` and ``alerts``."""

# Every check kind accepts these; they are converted here so that "${VAR}" works for them.
_GENERIC = {
    "critical": Option("critical", "bool"),
    "timeout": Option("timeout", "number"),
    "ttl": Option("ttl", "number"),
}


def build_health(
    data: Mapping[str, Any],
    registry: Registry,
    clock: Clock | None,
    problems: Problems,
    warned: list[str],
) -> tuple[HealthRegistry, MonitorSettings, tuple[AlertSettings, ...]]:
    """The health registry with every configured check, the monitor settings and the alerts."""
    health = HealthRegistry(clock=clock)
    table = data.get("health", {})
    if not isinstance(table, dict):
        problems.add(("health",), "must be a table")
        return health, MonitorSettings(), ()
    for key in table:
        if key not in HEALTH_KEYS:
            problems.unknown(("health", key), HEALTH_KEYS)
    settings = {k: v for k, v in table.items() if k in SETTINGS_OPTIONS["monitor"]}
    monitor = build_settings(
        MonitorSettings, SETTINGS_OPTIONS["monitor"], settings, ("health",), problems
    )
    checks = table.get("checks", {})
    if isinstance(checks, dict):
        for name, entry in checks.items():
            _add_check(health, name, entry, registry, problems, warned)
        declared = {entry.get("kind") for entry in checks.values() if isinstance(entry, dict)}
        if registry.breakers() and "breakers" not in declared and "circuit_breakers" not in health:
            # Readiness sees the breakers unless the file says otherwise: an open breaker
            # makes readiness warn (never fail).
            health.add(breakers_check(registry))
    else:
        problems.add(("health", "checks"), "must be a table of named checks")
    return health, monitor or MonitorSettings(), _alerts(table.get("alerts", []), problems)


def _add_check(
    health: HealthRegistry,
    name: str,
    entry: object,
    registry: Registry,
    problems: Problems,
    warned: list[str],
) -> None:
    path = ("health", "checks", name)
    if not isinstance(entry, dict):
        problems.add(path, f"must be a table with a kind, got {entry!r}")
        return
    kind = entry.get("kind")
    if not isinstance(kind, str):
        problems.add((*path, "kind"), f"is required: the kind of check, got {kind!r}")
        return
    if kind not in CHECK_KINDS:
        hint = suggest(kind, CHECK_KINDS)
        problems.add((*path, "kind"), f"unknown check kind {kind!r}{hint}")
        return
    allowed = check_options(kind)
    options = {}
    for key, value in entry.items():
        if key not in allowed and key != "kind":
            problems.unknown((*path, key), allowed, f"option of a {kind} check")
        elif key != "kind":
            option = _GENERIC.get(key)
            options[key] = (
                value if option is None else convert(option, value, (*path, key), problems)
            )

    def make(opts: dict[str, Any]) -> object:
        check = make_check(name, kind, opts, registry=registry)
        return health.add(check)

    build_entry(path, options, make, problems, warned, prefix=f"{name}.")


def _alerts(value: object, problems: Problems) -> tuple[AlertSettings, ...]:
    if not isinstance(value, list):
        problems.add(("health", "alerts"), "must be an array of tables: [[health.alerts]]")
        return ()
    alerts = []
    for index, table in enumerate(value):
        alert = build_settings(
            AlertSettings, SETTINGS_OPTIONS["alert"], table, ("health", "alerts", index), problems
        )
        if alert is not None:
            alerts.append(alert)
    return tuple(alerts)
