"""``[flags]``: where feature flags are kept, how often processes look for changes, and flags
created when the store has none of that name.

.. code-block:: toml

    [flags]
    store = "redis://cache:6379/0"   # default: sqlite in [server] state_dir (flags.db)
    namespace = "default"
    sync_interval = 0.5              # seconds between looks at the store
    audit_days = 90                  # 0: keep the audit trail forever

    [flags.defaults.new-checkout]    # created at startup if absent; never overwrites
    enabled = true
    rollout = 10
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from buttress import _options as opt
from buttress.config._errors import Problems
from buttress.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from buttress._clock import Clock
    from buttress.degrade import LevelSource
    from buttress.degrade.flags import Flag, FlagStore
    from buttress.health import HealthRegistry
    from buttress.registry import Registry

__all__ = ["FLAG_KEYS", "FlagSettings", "build_flags", "render_flags"]

FLAG_KEYS: Final = ("store", "namespace", "sync_interval", "audit_days", "defaults")
SEED_ACTOR = "buttress.toml"


@dataclass(frozen=True, slots=True)
class FlagSettings:
    """Feature flags (``[flags]``): ``store`` (a store URL; None: ``flags.db`` in the server's
    ``state_dir``), ``namespace="default"``, ``sync_interval=0.5`` s, ``audit_days=90`` (0:
    forever) and ``defaults``, flags created at startup when the store has none of that name."""

    store: str | None = None
    namespace: str = "default"
    sync_interval: float = 0.5
    audit_days: float = 90.0
    defaults: tuple[Flag, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.store is not None and (not isinstance(self.store, str) or not self.store):
            raise ConfigError("store", self.store, "must be a store URL (sqlite:///, redis://)")
        if not isinstance(self.namespace, str) or not self.namespace:
            raise ConfigError("namespace", self.namespace, "must be a non-empty string")
        object.__setattr__(self, "sync_interval", opt.duration("sync_interval", self.sync_interval))
        days = opt.number("audit_days", self.audit_days, minimum=0)
        object.__setattr__(self, "audit_days", days)

    def url(self, state_dir: str | Path = ".buttress") -> str:
        """The store's URL: ``store``, else ``sqlite:///<state_dir>/flags.db``."""
        return self.store if self.store is not None else f"sqlite:///{Path(state_dir, 'flags.db')}"

    def open(
        self,
        *,
        state_dir: str | Path = ".buttress",
        health: HealthRegistry | None = None,
        levels: LevelSource | None = None,
        registry: Registry | None = None,
        clock: Clock | None = None,
        sync: bool = True,
    ) -> FlagStore:
        """The ``FlagStore`` these settings describe, with ``defaults`` created if absent
        (audited as ``buttress.toml``; skipped while the store is unreachable). With a
        ``registry`` it is attached there as ``flags`` (what the ops server and CLI find) and
        takes the registry's degradation manager as ``levels`` unless one is given. ``sync``
        False: no background refresh (a command that runs once)."""
        from buttress.degrade import LevelSource
        from buttress.degrade.flags import FlagStore

        if levels is None and registry is not None:
            found = [m for m in registry.of_kind("degradation") if isinstance(m, LevelSource)]
            levels = found[0] if found else None
        flags = FlagStore(
            self.url(state_dir),
            namespace=self.namespace,
            levels=levels,
            health=health,
            sync_interval=self.sync_interval if sync else None,
            audit_ttl=timedelta(days=self.audit_days) if self.audit_days else None,
            bootstrap=self.defaults,
            clock=clock,
        )
        for flag in self.defaults:
            if flag.name in flags and flags.version >= 0:
                continue
            try:
                flags.create(flag, actor=SEED_ACTOR, reason="a default in buttress.toml")
            except (ConfigError, StoreError):  # created meanwhile, or the store is down
                continue
        if registry is not None:
            registry.attach("flags", flags, self.namespace)
        return flags


def build_flags(table: object, problems: Problems) -> FlagSettings | None:
    """``[flags]`` as ``FlagSettings``, or None after recording every problem."""
    from buttress.degrade.flags import Flag

    if not isinstance(table, dict):
        problems.add(("flags",), "must be a table")
        return None
    options: dict[str, Any] = {}
    for key, value in table.items():
        if key not in FLAG_KEYS:
            problems.unknown(("flags", key), FLAG_KEYS)
        elif key != "defaults":
            options[key] = value
    defaults = table.get("defaults", {})
    flags = []
    if isinstance(defaults, dict):
        for name, entry in defaults.items():
            try:
                flags.append(Flag.from_dict(entry, path="", name=name))
            except ConfigError as exc:
                where = [p for p in exc.field.split(".") if p]
                problems.add(
                    ("flags", "defaults", name, *where), f"{exc.expected}, got {exc.value!r}"
                )
    else:
        problems.add(("flags", "defaults"), "must be a table of [flags.defaults.<name>] tables")
    try:
        return FlagSettings(**options, defaults=tuple(flags))
    except ConfigError as exc:
        problems.config_error(("flags", exc.field), exc)
    except TypeError as exc:  # pragma: no cover - keys are checked above
        problems.add(("flags",), str(exc))
    return None


def render_flags(settings: FlagSettings) -> dict[str, Any]:
    """``[flags]`` as plain TOML-ready data (what ``buttress config show`` prints)."""
    data: dict[str, Any] = {}
    if settings.store is not None:
        data["store"] = settings.store
    data["namespace"] = settings.namespace
    data["sync_interval"] = settings.sync_interval
    data["audit_days"] = settings.audit_days
    if settings.defaults:
        data["defaults"] = {
            flag.name: _without_none(
                {k: v for k, v in flag.to_dict().items() if k not in ("name", "kind")}
            )
            for flag in settings.defaults
        }
    return data


def _without_none(value: Any) -> Any:
    """``value`` without None (TOML has no null): dropped from tables and lists."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value
