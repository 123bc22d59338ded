"""``load_config``: file, profile, environment -> a validated ``Config`` with live objects."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from buttress._clock import Clock
from buttress._redact import MASK, add_secret, redact
from buttress.config._backup import BackupSettings, build_backup, render_backup
from buttress.config._build import build_policies
from buttress.config._dlq import DLQSettings, build_dlq, render_dlq
from buttress.config._errors import Problems, is_secret_key, suggest
from buttress.config._flags import FlagSettings, build_flags, render_flags
from buttress.config._fleet import Fleet, build_fleet, render_fleet
from buttress.config._health import build_health
from buttress.config._profiles import DEFAULT_PROFILE, PROFILES, apply_profile
from buttress.config._schema import SECTIONS, is_table
from buttress.config._settings import (
    SETTINGS_OPTIONS,
    AlertSettings,
    MonitorSettings,
    ServerSettings,
    TokenSettings,
    build_settings,
    render,
)
from buttress.config._source import (
    PROFILE_VAR,
    apply_overrides,
    find_file,
    interpolate,
    merge,
    read_file,
)
from buttress.config._toml import dumps
from buttress.degrade._config import build_degradation
from buttress.health import HealthRegistry
from buttress.registry import Registry

if TYPE_CHECKING:
    from buttress.health import AlertSink, HealthMonitor

__all__ = ["TOP_KEYS", "Config", "load_config"]

SECTION_KEYS: Final = frozenset(
    {*SECTIONS, "health", "server", "flags", "degradation", "dlq", "fleet", "backup"}
)
TOP_KEYS: Final = frozenset({*SECTION_KEYS, "profile", "profiles"})
"""The keys allowed at the top of ``buttress.toml``."""


@dataclass(frozen=True, slots=True)
class Config:
    """A loaded configuration: ``profile`` and ``path`` (None: defaults only), ``data`` (the
    effective settings as plain data), ``registry`` (every configured policy and pipeline),
    ``health`` (a ``HealthRegistry`` with the configured checks), ``server``, ``monitor`` and
    ``alerts`` settings, and ``warnings`` about settings that have no effect."""

    profile: str
    path: Path | None
    data: dict[str, Any]
    registry: Registry
    health: HealthRegistry
    server: ServerSettings = field(default_factory=ServerSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    alerts: tuple[AlertSettings, ...] = ()
    flags: FlagSettings = field(default_factory=FlagSettings)
    dlq: DLQSettings | None = None
    """``[dlq]``; None without the table (``buttress dlq`` then uses the defaults)."""
    backup: BackupSettings | None = None
    """``[backup]``; None without the table (``buttress serve`` then runs no backups)."""
    fleet: Fleet | None = None
    """``[fleet]``: its store, shared breakers and the fleet scheduler (None without the table);
    ``config.fleet.close()`` stops the shared breakers' syncing and closes the store."""
    warnings: tuple[str, ...] = ()

    def masked(self) -> dict[str, Any]:
        """``data`` with secrets masked: values of keys named like password, token, secret or
        sha256 become ``***``, and passwords in URLs and DSNs are masked (``redact``)."""
        result: dict[str, Any] = _mask(self.data, None)
        return result

    def to_toml(self) -> str:
        """The effective configuration, secrets masked, as TOML (what ``config show`` prints)."""
        return dumps(self.masked(), is_table=is_table)

    def health_monitor(self, *, sinks: Iterable[AlertSink] = ()) -> HealthMonitor:
        """A ``HealthMonitor`` over ``health`` with the configured settings and alert sinks
        (plus ``sinks``); call its ``start()`` in a running event loop."""
        from buttress.health import HealthMonitor

        return HealthMonitor(
            self.health,
            interval=self.monitor.interval,
            history=self.monitor.history,
            cooldown=self.monitor.cooldown,
            sinks=(*(alert.sink() for alert in self.alerts), *sinks),
        )


def load_config(
    path: str | PathLike[str] | None = None,
    *,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> Config:
    """Read, merge and validate the configuration and build what it declares.

    The file is ``path``, else ``$BUTTRESS_CONFIG``, else ``./buttress.toml`` if present, else
    none (defaults only). The profile is ``profile``, else ``$BUTTRESS_PROFILE``, else the file's
    ``profile`` key, else ``"production"``. Layers, lowest first: the profile's defaults, the
    file, its ``[profiles.<active>]`` table, then ``BUTTRESS_*`` variables. ``environ`` (default
    ``os.environ``) serves interpolation and overrides; ``clock`` goes to every policy and check.
    Raises ``ConfigFileError`` listing every problem, each with its path.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    file = find_file(path, env)
    source = None if file is None else str(file)
    raw = {} if file is None else read_file(file)
    problems = Problems()
    secrets: list[str] = []
    raw = interpolate(raw, env, problems, secrets)
    active = _choose_profile(profile, env, raw, problems)
    data = merge(
        {k: v for k, v in raw.items() if k not in ("profile", "profiles")},
        _profile_tables(raw.get("profiles", {}), problems).get(active, {}),
        is_table,
    )
    problems.origins.update(apply_overrides(data, env, problems))
    for key in list(data):
        if key not in TOP_KEYS:
            for where, variable in list(problems.origins.items()):
                if where.startswith(f"{key}."):  # name the variable that made the section
                    problems.origins.setdefault(key, variable)
            problems.unknown((key,), TOP_KEYS, "section")
            del data[key]
    for where, origin in apply_profile(data, PROFILES[active]).items():
        problems.origins.setdefault(where, origin)
    _collect_secrets(data, None, secrets)
    for secret in secrets:
        add_secret(secret)

    registry = Registry(clock=clock)
    warned: list[str] = []
    fleet = build_fleet(data.get("fleet"), problems, clock)  # before the shared breakers
    build_policies(data, registry, problems, warned, fleet)
    health, monitor, alerts = build_health(data, registry, clock, problems, warned)
    build_degradation(data, registry, health, alerts, clock, problems)  # registers itself
    server = _server(data.get("server", {}), problems) or ServerSettings()
    flags = build_flags(data.get("flags", {}), problems) or FlagSettings()
    dlq = build_dlq(data.get("dlq"), problems)
    backup = build_backup(data.get("backup"), problems, server.state_dir)
    if problems and fleet is not None:
        fleet.close()  # the shared breakers built before the problem stop syncing
    problems.raise_if_any(source)

    for message in warned:
        warnings.warn(message, UserWarning, stacklevel=2)
    effective: dict[str, Any] = {"profile": active, "server": render(server)}
    effective["health"] = {**render(monitor), **data.get("health", {}), **render(monitor)}
    effective.update((name, data[name]) for name in SECTIONS if name in data)
    if "degradation" in data:
        effective["degradation"] = data["degradation"]
    effective["flags"] = render_flags(flags)
    if dlq is not None:
        effective["dlq"] = render_dlq(dlq)
    if fleet is not None:
        effective["fleet"] = render_fleet(fleet.settings)
    if backup is not None:
        effective["backup"] = render_backup(backup)
    return Config(
        profile=active,
        path=file,
        data=effective,
        registry=registry,
        health=health,
        server=server,
        monitor=monitor,
        alerts=alerts,
        flags=flags,
        dlq=dlq,
        fleet=fleet,
        backup=backup,
        warnings=tuple(warned),
    )


def _choose_profile(
    argument: str | None, env: Mapping[str, str], raw: Mapping[str, Any], problems: Problems
) -> str:
    """The active profile: the argument, else $BUTTRESS_PROFILE, else the file's key."""
    for value, where in (
        (argument, "the profile argument"),
        (env.get(PROFILE_VAR) or None, PROFILE_VAR),
        (raw.get("profile"), None),
    ):
        if value is None:
            continue
        if isinstance(value, str) and value in PROFILES:
            return value
        hint = suggest(value, PROFILES) if isinstance(value, str) else ""
        message = f"unknown profile {value!r}{hint}: expected one of {', '.join(PROFILES)}"
        if where is None:
            problems.add(("profile",), message)
        else:
            problems.add((), f"{message} (set by {where})")
        break
    return DEFAULT_PROFILE


def _profile_tables(value: object, problems: Problems) -> dict[str, dict[str, Any]]:
    """The ``[profiles.<name>]`` tables, checked: known profile names, known sections only."""
    if not isinstance(value, dict):
        problems.add(("profiles",), "must be a table of [profiles.<name>] tables")
        return {}
    tables: dict[str, dict[str, Any]] = {}
    for name, table in value.items():
        if name not in PROFILES:
            problems.unknown(("profiles", name), PROFILES, "profile")
        elif not isinstance(table, dict):
            problems.add(("profiles", name), "must be a table")
        else:
            for key in table:
                if key not in SECTION_KEYS:
                    problems.unknown(("profiles", name, key), SECTION_KEYS, "section")
            tables[name] = {k: v for k, v in table.items() if k in SECTION_KEYS}
    return tables


def _server(table: object, problems: Problems) -> ServerSettings | None:
    """``[server]`` and its ``[[server.tokens]]``."""
    if not isinstance(table, dict):
        problems.add(("server",), "must be a table")
        return None
    raw_tokens = table.get("tokens", [])
    tokens = []
    if isinstance(raw_tokens, list):
        for index, entry in enumerate(raw_tokens):
            token = build_settings(
                TokenSettings,
                SETTINGS_OPTIONS["token"],
                entry,
                ("server", "tokens", index),
                problems,
            )
            if token is not None:
                tokens.append(token)
    else:
        problems.add(("server", "tokens"), "must be an array of tables: [[server.tokens]]")
    rest = {k: v for k, v in table.items() if k != "tokens"}
    return build_settings(
        ServerSettings,
        SETTINGS_OPTIONS["server"],
        rest,
        ("server",),
        problems,
        tokens=tuple(tokens),
    )


def _collect_secrets(value: object, key: str | None, found: list[str]) -> None:
    if isinstance(value, dict):
        for name, item in value.items():
            _collect_secrets(item, name, found)
    elif isinstance(value, list):
        for item in value:
            _collect_secrets(item, key, found)
    elif isinstance(value, str) and is_secret_key(key):
        found.append(value)


def _mask(value: object, key: str | None) -> Any:
    if isinstance(value, dict):
        return {name: _mask(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_mask(item, key) for item in value]
    if is_secret_key(key) and isinstance(value, str | int | float) and not isinstance(value, bool):
        return MASK
    if isinstance(value, str):
        return redact(value)
    return value
