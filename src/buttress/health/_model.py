"""Health data: statuses, a check's result, the check itself, and how results are normalised."""

from __future__ import annotations

import enum
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeAlias

from buttress import _options as opt
from buttress._redact import redact
from buttress.errors import ConfigError

__all__ = [
    "COMPONENT_TYPES",
    "GROUPS",
    "Check",
    "CheckFunction",
    "CheckResult",
    "Status",
    "grade",
    "to_result",
]

GROUPS = frozenset({"liveness", "readiness", "startup"})
COMPONENT_TYPES = frozenset({"component", "datastore", "system"})


class Status(enum.Enum):
    """A check's verdict, ordered from best to worst: PASS < WARN < FAIL. UNKNOWN counts as WARN."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"
    """Not run yet."""

    @property
    def severity(self) -> int:
        """0 for pass, 1 for warn and unknown, 2 for fail."""
        return _SEVERITY[self]

    @property
    def ietf(self) -> str:
        """The value in ``application/health+json`` (``unknown`` is reported as ``warn``)."""
        return "warn" if self is Status.UNKNOWN else self.value

    @classmethod
    def parse(cls, value: object) -> Status:
        """A Status from a Status, a bool, or words like "healthy", "degraded", "down"."""
        if isinstance(value, Status):
            return value
        if isinstance(value, bool):
            return cls.PASS if value else cls.FAIL
        if isinstance(value, str):
            found = _ALIASES.get(value.strip().lower())
            if found is not None:
                return found
        raise ValueError(f"status: not a health status, got {value!r}")

    def __str__(self) -> str:
        return self.value


_SEVERITY = {Status.PASS: 0, Status.WARN: 1, Status.UNKNOWN: 1, Status.FAIL: 2}
_ALIASES = {
    **dict.fromkeys(("pass", "ok", "up", "healthy", "true"), Status.PASS),
    **dict.fromkeys(("warn", "warning", "degraded"), Status.WARN),
    **dict.fromkeys(("fail", "down", "unhealthy", "error", "critical", "false"), Status.FAIL),
    "unknown": Status.UNKNOWN,
}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one run of a check found.

    ``observed_value``/``observed_unit`` follow the IETF health format (``"ms"``, ``"percent"``,
    ``"MiB"``...). ``output`` is for humans and is redacted (no DSN or token ever shows).
    ``details`` carries extra facts (a server version, pool statistics). ``time`` (wall clock)
    and ``duration`` (seconds) are filled in by the registry.
    """

    status: Status
    output: str = ""
    observed_value: float | int | str | None = None
    observed_unit: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    time: float = 0.0
    duration: float = 0.0

    def __post_init__(self) -> None:
        if self.output:
            object.__setattr__(self, "output", redact(self.output))

    @classmethod
    def passed(cls, output: str = "", **kwargs: Any) -> CheckResult:
        """A passing result."""
        return cls(Status.PASS, output, **kwargs)

    @classmethod
    def warned(cls, output: str = "", **kwargs: Any) -> CheckResult:
        """A warning result."""
        return cls(Status.WARN, output, **kwargs)

    @classmethod
    def failed(cls, output: str = "", **kwargs: Any) -> CheckResult:
        """A failing result."""
        return cls(Status.FAIL, output, **kwargs)


CheckReturn: TypeAlias = CheckResult | bool | str | Status | Mapping[str, Any] | None
CheckFunction: TypeAlias = Callable[[], CheckReturn | Awaitable[CheckReturn]]
"""A check: a sync or async callable taking no arguments."""


def to_result(value: object) -> CheckResult:
    """Normalise what a check returned: a CheckResult, a bool, a status word or Status, a dict
    like ``{"status": "healthy", "value": 1, "unit": "ms", "message": "..."}``, or None (pass)."""
    if isinstance(value, CheckResult):
        return value
    if value is None:
        return CheckResult(Status.PASS)
    if isinstance(value, bool | str | Status):
        return CheckResult(Status.parse(value))
    if isinstance(value, Mapping):
        data = dict(value)
        status = Status.parse(data.pop("status", Status.PASS))
        output = str(data.pop("message", data.pop("output", "")) or "")
        observed = data.pop("value", data.pop("observed_value", None))
        unit = data.pop("unit", data.pop("observed_unit", None))
        return CheckResult(status, output, observed, unit, data)
    raise TypeError(f"a health check returned {type(value).__name__}, not a result")


def grade(
    value: float, *, warn_above: float | None = None, fail_above: float | None = None
) -> Status:
    """PASS, or WARN/FAIL when ``value`` is above the thresholds (fail wins)."""
    if fail_above is not None and value > fail_above:
        return Status.FAIL
    if warn_above is not None and value > warn_above:
        return Status.WARN
    return Status.PASS


@dataclass(slots=True)
class Check:
    """A named health check and how to run it.

    ``fn`` is a sync or async callable with no arguments (sync ones run in a thread).
    ``component_type`` is ``component``, ``datastore`` or ``system``; ``measurement`` is the
    second half of the IETF key (``"db:responseTime"``). ``critical`` checks decide the overall
    status (a failing non-critical one only warns). ``groups`` are among ``liveness``,
    ``readiness`` and ``startup``. Defaults: critical, readiness, ``timeout`` 5 s, ``ttl`` 30 s
    (how long a result is served from cache).
    """

    name: str
    fn: CheckFunction
    component_type: str = "component"
    measurement: str = "status"
    critical: bool = True
    groups: frozenset[str] = frozenset({"readiness"})
    timeout: float = 5.0
    ttl: float = 30.0
    is_async: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("name", self.name, "must be a non-empty string")
        if not callable(self.fn):
            raise ConfigError(f"{self.name}.fn", self.fn, "must be a callable")
        if self.component_type not in COMPONENT_TYPES:
            raise ConfigError(
                f"{self.name}.component_type",
                self.component_type,
                f"must be one of {sorted(COMPONENT_TYPES)}",
            )
        groups = as_groups(self.groups)
        if not groups <= GROUPS:
            raise ConfigError(f"{self.name}.groups", sorted(groups), f"must be in {sorted(GROUPS)}")
        self.groups = groups
        self.timeout = opt.duration(f"{self.name}.timeout", _seconds(self.timeout))
        self.ttl = opt.duration(f"{self.name}.ttl", _seconds(self.ttl), allow_zero=True)
        self.is_async = inspect.iscoroutinefunction(self.fn) or inspect.iscoroutinefunction(
            getattr(self.fn, "__call__", None)  # noqa: B004 - a callable object's async __call__
        )

    @property
    def key(self) -> str:
        """The IETF ``checks`` key: ``name:measurement``."""
        return f"{self.name}:{self.measurement}"


def _seconds(value: object) -> object:
    return value.total_seconds() if isinstance(value, timedelta) else value


def as_groups(value: object) -> frozenset[str]:
    """Groups from one name or several."""
    if isinstance(value, str):
        return frozenset([value])
    if isinstance(value, Iterable):
        return frozenset(str(item) for item in value)
    raise ConfigError("groups", value, "must be a group name or a list of them")
