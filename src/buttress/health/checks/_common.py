"""What every built-in check shares: the generic options, thresholds, timing and scrubbing.

Errors name the bare option (``timeout``, ``warn_above``) so that the configuration loader can
prefix the path of the check (``health.checks.db.timeout``).
"""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TypedDict
from urllib.parse import unquote, urlsplit

from buttress import _options as opt
from buttress._redact import MASK, redact
from buttress.errors import ConfigError
from buttress.health._model import COMPONENT_TYPES, GROUPS, Check, CheckFunction, Status

__all__ = [
    "GENERIC_OPTIONS",
    "CheckOptions",
    "Common",
    "common",
    "elapsed_ms",
    "error_text",
    "mib",
    "over",
    "passwords_in",
    "require",
    "scrub",
    "sensitive_values",
    "thresholds",
    "worst",
]

MAX_OUTPUT = 500
"""Longest ``output`` a built-in check writes (the tail of a long message is cut)."""


class CheckOptions(TypedDict, total=False):
    """The options every built-in check accepts (each factory has its own defaults).

    ``component_type``: ``component``, ``datastore`` or ``system``; ``measurement``: the second
    half of the IETF key; ``critical`` (default true); ``groups``: ``liveness``, ``readiness``,
    ``startup`` (default readiness); ``timeout`` (default 5 s); ``ttl``: cache time (default 30 s).
    """

    component_type: str
    measurement: str
    critical: bool
    groups: str | Iterable[str]
    timeout: float | timedelta
    ttl: float | timedelta


GENERIC_OPTIONS = frozenset(CheckOptions.__annotations__)


@dataclass(frozen=True, slots=True)
class Common:
    """The generic options of one check, validated; ``check(fn)`` builds the ``Check``."""

    name: str
    component_type: str
    measurement: str
    critical: bool
    groups: frozenset[str]
    timeout: float
    ttl: float

    def check(self, fn: CheckFunction) -> Check:
        """The ``Check`` running ``fn`` with these options."""
        return Check(
            self.name,
            fn,
            component_type=self.component_type,
            measurement=self.measurement,
            critical=self.critical,
            groups=self.groups,
            timeout=self.timeout,
            ttl=self.ttl,
        )


def common(
    name: object,
    options: CheckOptions,
    *,
    component_type: str = "component",
    measurement: str = "status",
    groups: Iterable[str] = ("readiness",),
) -> Common:
    """Validate the generic ``options`` over a factory's defaults; errors name the bare field."""
    unknown = sorted(set(options) - GENERIC_OPTIONS)
    if unknown:
        extra: dict[str, object] = dict(options)
        value = extra[unknown[0]]
        shown = redact(value) if isinstance(value, str) else value
        raise ConfigError(unknown[0], shown, "is not an option of this check")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("name", name, "must be a non-empty string")
    kind = options.get("component_type", component_type)
    if kind not in COMPONENT_TYPES:
        raise ConfigError("component_type", kind, f"must be one of {sorted(COMPONENT_TYPES)}")
    measurement = options.get("measurement", measurement)
    if not isinstance(measurement, str) or not measurement:
        raise ConfigError("measurement", measurement, "must be a non-empty string")
    critical = options.get("critical", True)
    if not isinstance(critical, bool):
        raise ConfigError("critical", critical, "must be true or false")
    chosen = _groups(options.get("groups", groups))
    if "liveness" in chosen and kind != "system":
        raise ConfigError(
            "groups", sorted(chosen), "may hold liveness only for component_type 'system'"
        )
    return Common(
        name=name,
        component_type=kind,
        measurement=measurement,
        critical=critical,
        groups=chosen,
        timeout=opt.duration("timeout", options.get("timeout", 5.0)),
        ttl=opt.duration("ttl", options.get("ttl", 30.0), allow_zero=True),
    )


def _groups(value: object) -> frozenset[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Iterable) or isinstance(items, Mapping):
        raise ConfigError("groups", value, "must be a group name or a list of them")
    names = list(items)
    if not all(isinstance(g, str) for g in names):
        raise ConfigError("groups", names, "must be a group name or a list of them")
    chosen = frozenset(names)
    if not chosen <= GROUPS:
        raise ConfigError("groups", sorted(chosen), f"must be among {sorted(GROUPS)}")
    return chosen


def thresholds(
    warn: object,
    fail: object,
    *,
    warn_field: str = "warn_above",
    fail_field: str = "fail_above",
    maximum: float | None = None,
) -> tuple[float | None, float | None]:
    """Validated warn and fail thresholds: None or a number >= 0 (<= ``maximum``), warn <= fail."""
    checked: list[float | None] = []
    for field, value in ((warn_field, warn), (fail_field, fail)):
        if value is None:
            checked.append(None)
            continue
        number = opt.number(field, value, minimum=0)
        if maximum is not None and number > maximum:
            raise ConfigError(field, value, f"must be between 0 and {maximum:g}")
        checked.append(number)
    low, high = checked
    if low is not None and high is not None and low > high:
        raise ConfigError(warn_field, warn, f"must be <= {fail_field} ({high:g})")
    return low, high


def over(status: Status, warn: float | None, fail: float | None, unit: str = "ms") -> str:
    """ " (above 100 ms)" when ``status`` comes from a threshold, else ""."""
    limit = fail if status is Status.FAIL else warn if status is Status.WARN else None
    if limit is None:
        return ""
    space = "" if unit in ("", "%") else " "
    return f" (above {limit:g}{space}{unit})"


def require(module: str, kind: str, extra: str) -> None:
    """ConfigError on ``kind`` unless ``module`` can be imported."""
    if importlib.util.find_spec(module) is None:
        raise ConfigError("kind", kind, f"needs {module}: install buttress[{extra}]")


def worst(*statuses: Status) -> Status:
    """The most severe of ``statuses`` (PASS when there are none)."""
    return max(statuses, key=lambda s: s.severity, default=Status.PASS)


def elapsed_ms(start: float) -> float:
    """Milliseconds since ``start`` (a ``time.perf_counter()`` reading), to the microsecond."""
    return round((time.perf_counter() - start) * 1000.0, 3)


def mib(size: float) -> float:
    """Bytes as MiB, to two decimals."""
    return round(size / 1048576.0, 2)


_KV_PASSWORD = re.compile(r"\bpassword\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))", re.IGNORECASE)


def passwords_in(*texts: str | None) -> tuple[str, ...]:
    """The passwords written in URLs or ``key=value`` DSNs, raw and percent-decoded."""
    found: set[str] = set()
    for text in texts:
        if not text:
            continue
        try:
            password = urlsplit(text).password
        except ValueError:
            password = None
        if password:
            found.update({password, unquote(password)})
        for match in _KV_PASSWORD.finditer(text):
            found.add(match[1] if match[1] is not None else match[2])
    # Very short values would mask ordinary words; redact() still masks them in their context.
    return tuple(sorted((s for s in found if len(s) >= 3), key=len, reverse=True))


_SENSITIVE_WORDS = (
    "auth",
    "token",
    "key",
    "secret",
    "cookie",
    "session",
    "pass",
    "pwd",
    "credential",
)


def sensitive_values(table: Mapping[str, str]) -> tuple[str, ...]:
    """The values of ``table`` whose keys look secret (``Authorization``, ``API_KEY``...)."""
    found = {
        value
        for key, value in table.items()
        if any(word in key.lower() for word in _SENSITIVE_WORDS) and len(value) >= 3
    }
    return tuple(sorted(found, key=len, reverse=True))


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` redacted, with every one of ``secrets`` masked, on one line, at most 500 chars."""
    text = redact(" ".join(text.split()))
    for secret in secrets:
        text = text.replace(secret, MASK)
    if len(text) > MAX_OUTPUT:
        text = text[: MAX_OUTPUT - 3] + "..."
    return text


def error_text(exc: BaseException, timeout: float, secrets: Iterable[str] = ()) -> str:
    """A one-line, secret-free description of what went wrong."""
    if not str(exc) and (isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__):
        return f"timed out after {timeout:g}s"  # asyncio's and httpx's timeouts say nothing
    cause: BaseException | None = exc
    for _ in range(5):  # drivers wrap the OS error (httpx: ConnectError from it)
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    message = str(exc) or type(exc).__name__
    return scrub(message, secrets)
