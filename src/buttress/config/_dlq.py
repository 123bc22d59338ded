"""``[dlq]``: the dead letter queue the ops server and ``buttress dlq`` open.

.. code-block:: toml

    [dlq]
    url = "sqlite:///.buttress/dlq.db"   # default: dlq.db in [server] state_dir
    name = "dlq"
    max_attempts = 5
    lease = 60.0
    batch = 100
    retention_days = 7.0
    rate_window = 300.0
    process_interval = 300.0             # the ops server's processing job; 0: none
    cleanup_interval = 86400.0           # its cleanup job; 0: none

    [dlq.handlers]                       # queue = the function re-processing its messages
    emails = "myapp.mail.resend"

    [dlq.health]                         # /health/dlq: warn/fail above; false: never
    parked_warn = 0
    oldest_pending_age_fail = 86400

    [dlq.alerts]                         # sent to the [[health.alerts]] sinks
    parked_above = 10
    arrival_rate_above = 5.0
    cooldown = 300.0

Without a ``[dlq]`` table ``buttress serve`` opens no queue; ``buttress dlq`` opens the
default one (``dlq.db`` in the state directory).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from buttress import _options as opt
from buttress.config._errors import Problems
from buttress.config._schema import resolve
from buttress.dlq._ops import HEALTH_METRICS, HealthThresholds, Operations
from buttress.errors import ConfigError

if TYPE_CHECKING:
    from buttress._clock import Clock
    from buttress.dlq import DeadLetterQueue
    from buttress.health import AlertSink
    from buttress.registry import Registry

__all__ = ["DLQ_KEYS", "DLQSettings", "build_dlq", "render_dlq"]

SCALARS: Final = (
    "url",
    "name",
    "max_attempts",
    "lease",
    "batch",
    "retention_days",
    "rate_window",
    "process_interval",
    "cleanup_interval",
)
DLQ_KEYS: Final = frozenset({*SCALARS, "handlers", "health", "alerts"})
ALERT_KEYS: Final = frozenset({"parked_above", "arrival_rate_above", "cooldown"})
HEALTH_KEYS: Final = frozenset(f"{m}_{level}" for m in HEALTH_METRICS for level in ("warn", "fail"))


@dataclass(frozen=True, slots=True)
class DLQSettings:
    """The dead letter queue (``[dlq]``): ``url`` (None: ``dlq.db`` in the server's
    ``state_dir``), the queue's ``name`` and options, the ops server's job intervals (0: no
    job), ``handlers`` (queue -> function), ``health`` thresholds and ``alerts`` thresholds
    (``parked_above``, ``arrival_rate_above``, ``cooldown``)."""

    url: str | None = None
    name: str = "dlq"
    max_attempts: int = 5
    lease: float = 60.0
    batch: int = 100
    retention_days: float = 7.0
    rate_window: float = 300.0
    process_interval: float = 300.0
    cleanup_interval: float = 86400.0
    handlers: tuple[tuple[str, str, Callable[..., Any]], ...] = ()
    """(queue, dotted path, function) triples."""
    health: HealthThresholds = field(default_factory=HealthThresholds)
    alerts: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.url is not None and (not isinstance(self.url, str) or not self.url):
            raise ConfigError("url", self.url, "must be a URL (sqlite:///path.db, redis://...)")
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("name", self.name, "must be a non-empty string")
        opt.integer("max_attempts", self.max_attempts)
        opt.integer("batch", self.batch)
        for name in ("lease", "retention_days", "rate_window"):
            object.__setattr__(self, name, opt.number(name, getattr(self, name), minimum=0))
            if getattr(self, name) == 0:
                raise ConfigError(name, 0, "must be > 0")
        for name in ("process_interval", "cleanup_interval"):
            object.__setattr__(self, name, opt.number(name, getattr(self, name), minimum=0))

    def resolved_url(self, state_dir: str | Path = ".buttress") -> str:
        """The queue's URL: ``url``, else ``sqlite:///<state_dir>/dlq.db``."""
        return self.url if self.url is not None else f"sqlite:///{Path(state_dir, 'dlq.db')}"

    def operations(self) -> Operations:
        """The ops server's settings for this queue (0 intervals turn the job off)."""
        return Operations(
            health=self.health,
            process_interval=self.process_interval or None,
            cleanup_interval=self.cleanup_interval or None,
        )

    def open(
        self,
        *,
        state_dir: str | Path = ".buttress",
        registry: Registry | None = None,
        sinks: Iterable[AlertSink] = (),
        clock: Clock | None = None,
    ) -> DeadLetterQueue:
        """The ``DeadLetterQueue`` these settings describe, with its handlers registered and
        alerts sent to ``sinks``; with a ``registry`` it is attached there (kind ``dlq``, with
        its ``Operations`` as ``dlq_operations``), where the ops server finds it. The folder
        of a SQLite file is created if missing."""
        from buttress.dlq import Alerts, DeadLetterQueue

        url = self.resolved_url(state_dir)
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        alerts = None
        if self.alerts:
            alerts = Alerts(**self.alerts, sinks=tuple(sinks))  # type: ignore[arg-type]
        dlq = DeadLetterQueue(
            url,
            name=self.name,
            max_attempts=self.max_attempts,
            lease=self.lease,
            batch=self.batch,
            retention=timedelta(days=self.retention_days),
            rate_window=self.rate_window,
            alerts=alerts,
            clock=clock,
        )
        for queue, _path, fn in self.handlers:
            dlq.handler(queue)(fn)
        if registry is not None:
            registry.attach("dlq", dlq, dlq.name)
            registry.attach("dlq_operations", self.operations(), dlq.name)
        return dlq


def _threshold(value: object) -> object:
    return None if value is False else value


def build_dlq(table: object, problems: Problems) -> DLQSettings | None:
    """``[dlq]`` as ``DLQSettings`` (None without the table, or after recording problems)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        problems.add(("dlq",), "must be a table")
        return None
    for key in table:
        if key not in DLQ_KEYS:
            problems.unknown(("dlq", key), DLQ_KEYS)
    options = {key: table[key] for key in SCALARS if key in table}
    handlers = _handlers(table.get("handlers", {}), problems)
    health = _health(table.get("health", {}), problems)
    alerts = _alerts(table.get("alerts", {}), problems)
    if problems.failed_under(("dlq",)) or health is None:
        return None
    try:
        return DLQSettings(**options, handlers=handlers, health=health, alerts=alerts)
    except ConfigError as exc:
        problems.config_error(("dlq", exc.field), exc)
    return None


def _handlers(table: object, problems: Problems) -> tuple[tuple[str, str, Any], ...]:
    if not isinstance(table, dict):
        problems.add(("dlq", "handlers"), 'must be a table of queue = "module.function"')
        return ()
    found: list[tuple[str, str, Any]] = []
    for queue, path in table.items():
        where = ("dlq", "handlers", queue)
        if not isinstance(path, str):
            problems.add(where, f"must be a dotted path to a function, got {path!r}")
            continue
        try:
            fn = resolve(path)
        except LookupError as exc:
            problems.add(where, str(exc))
            continue
        if not callable(fn):
            problems.add(where, f"{path!r} is not callable")
            continue
        found.append((queue, path, fn))
    return tuple(found)


def _health(table: object, problems: Problems) -> HealthThresholds | None:
    if not isinstance(table, dict):
        problems.add(("dlq", "health"), "must be a table of thresholds")
        return None
    for key in table:
        if key not in HEALTH_KEYS:
            problems.unknown(("dlq", "health", key), HEALTH_KEYS)
    values: dict[str, Any] = {k: _threshold(v) for k, v in table.items() if k in HEALTH_KEYS}
    try:
        return HealthThresholds(**values)
    except ConfigError as exc:
        problems.config_error(("dlq", "health", exc.field), exc)
        return None


def _alerts(table: object, problems: Problems) -> dict[str, float]:
    if not isinstance(table, dict):
        problems.add(("dlq", "alerts"), "must be a table")
        return {}
    for key in table:
        if key not in ALERT_KEYS:
            problems.unknown(("dlq", "alerts", key), ALERT_KEYS)
    values = {k: v for k, v in table.items() if k in ALERT_KEYS}
    if values:
        from buttress.dlq import Alerts

        try:
            Alerts(**values)
        except ConfigError as exc:
            problems.config_error(("dlq", "alerts", exc.field), exc)
        except TypeError as exc:  # pragma: no cover - keys are checked above
            problems.add(("dlq", "alerts"), str(exc))
    return values


def render_dlq(settings: DLQSettings) -> dict[str, Any]:
    """``[dlq]`` as plain TOML-ready data (what ``buttress config show`` prints)."""
    data: dict[str, Any] = {}
    for item in fields(DLQSettings):
        value = getattr(settings, item.name)
        if item.name in ("handlers", "health", "alerts") or value is None:
            continue
        data[item.name] = value
    data["handlers"] = {queue: path for queue, path, _fn in settings.handlers}
    data["health"] = {k: (False if v is None else v) for k, v in settings.health.to_dict().items()}
    if settings.alerts:
        data["alerts"] = dict(settings.alerts)
    return data
