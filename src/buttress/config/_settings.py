"""Settings that are not policies: the ops server, its tokens, the health monitor and alerts.

Each is a frozen dataclass validated at construction, like the policies' options, and the
configuration's keys are its fields.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from buttress import _options as opt
from buttress.config._errors import Problems
from buttress.config._schema import Option, convert_entry, options_of
from buttress.errors import ConfigError

if TYPE_CHECKING:
    from buttress.health import AlertSink

__all__ = [
    "AlertSettings",
    "MonitorSettings",
    "ServerSettings",
    "TokenSettings",
    "build_settings",
    "render",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")
ROLES: Final = ("viewer", "operator")
ALERT_KINDS: Final = ("log", "webhook")

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """An ops server bearer token, stored hashed: ``name``, ``role`` ("viewer" or "operator") and
    ``sha256``, the hex SHA-256 of the token (``printf %s TOKEN | sha256sum``)."""

    name: str
    role: str
    sha256: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("name", self.name, "must be a non-empty string")
        if self.role not in ROLES:
            raise ConfigError("role", self.role, "must be 'viewer' or 'operator'")
        digest = self.sha256.lower() if isinstance(self.sha256, str) else ""
        if not _HEX64.fullmatch(digest):
            raise ConfigError(
                "sha256", "<hidden>", "must be 64 hex characters: the SHA-256 of the token"
            )
        object.__setattr__(self, "sha256", digest)

    def verify(self, token: str) -> bool:
        """Whether ``token`` hashes to ``sha256`` (compared in constant time)."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        return hmac.compare_digest(digest, self.sha256)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The ops server (``buttress serve``): ``host="127.0.0.1"``, ``port=8000`` (0: any free
    port), ``state_dir=".buttress"`` (SQLite state, relative to the working directory),
    ``public_reads=False`` (read endpoints need a token unless true), ``max_body_bytes=1048576``
    and ``tokens=()``."""

    host: str = "127.0.0.1"
    port: int = 8000
    state_dir: Path = Path(".buttress")
    public_reads: bool = False
    max_body_bytes: int = 1_048_576
    tokens: tuple[TokenSettings, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError("host", self.host, "must be a host name or address")
        port = opt.integer("port", self.port, minimum=0)
        if port > 65535:
            raise ConfigError("port", port, "must be an integer from 0 to 65535")
        if not isinstance(self.state_dir, str | Path) or not str(self.state_dir):
            raise ConfigError("state_dir", self.state_dir, "must be a directory path")
        object.__setattr__(self, "state_dir", Path(self.state_dir))
        if not isinstance(self.public_reads, bool):
            raise ConfigError("public_reads", self.public_reads, "must be true or false")
        opt.integer("max_body_bytes", self.max_body_bytes, minimum=1)
        names = [token.name for token in self.tokens]
        for name in names:
            if names.count(name) > 1:
                raise ConfigError("tokens", name, "must have unique names")

    def role_of(self, token: str) -> str | None:
        """The role of the configured token matching ``token``, or None (checks every token)."""
        role = None
        for entry in self.tokens:
            if entry.verify(token):
                role = entry.role
        return role


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """The health monitor (``[health]``): run the checks every ``interval=60`` s, alert on a
    check's status change at most once per ``cooldown=300`` s, keep ``history=100`` results
    per check. The active profile may supply other defaults."""

    interval: float = 60.0
    cooldown: float = 300.0
    history: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "interval", opt.duration("interval", self.interval))
        object.__setattr__(
            self, "cooldown", opt.duration("cooldown", self.cooldown, allow_zero=True)
        )
        opt.integer("history", self.history, minimum=1)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """An alert sink (``[[health.alerts]]``): ``kind`` "log" or "webhook"; a webhook POSTs JSON
    to ``url`` (http or https) with extra ``headers`` and gives up after ``timeout=5`` s."""

    kind: str
    url: str | None = None
    timeout: float = 5.0
    headers: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ALERT_KINDS:
            raise ConfigError("kind", self.kind, "must be 'log' or 'webhook'")
        if self.kind == "webhook":
            if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
                raise ConfigError("url", self.url, "must be an http:// or https:// URL")
        elif self.url is not None or self.headers is not None:
            field = "url" if self.url is not None else "headers"
            raise ConfigError(field, getattr(self, field), "is only for webhook alerts")
        object.__setattr__(self, "timeout", opt.duration("timeout", self.timeout))
        if self.headers is not None:
            if not isinstance(self.headers, Mapping) or not all(
                isinstance(v, str) for v in self.headers.values()
            ):
                raise ConfigError("headers", self.headers, "must be a table of strings")
            object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))

    def sink(self) -> AlertSink:
        """The ``buttress.health`` alert sink these settings describe."""
        from buttress.health import LogSink, WebhookSink

        if self.kind == "log":
            return LogSink()
        assert self.url is not None
        headers = None if self.headers is None else dict(self.headers)
        return WebhookSink(self.url, timeout=self.timeout, headers=headers)


# Valid stand-ins for required fields, so that one bad field does not hide the others' problems.
_PROBES: dict[type[Any], dict[str, object]] = {
    TokenSettings: {"name": "token", "role": "viewer", "sha256": "0" * 64},
}

SETTINGS_OPTIONS: Final = {
    "server": options_of(ServerSettings),
    "token": options_of(TokenSettings),
    "monitor": options_of(MonitorSettings),
    "alert": options_of(AlertSettings),
}


def build_settings(
    cls: type[S],
    options: dict[str, Option],
    table: object,
    path: tuple[str | int, ...],
    problems: Problems,
    **built: Any,
) -> S | None:
    """``cls`` from a table, or None after recording every problem; ``built`` adds fields
    converted by the caller (the server's tokens)."""
    from buttress.config._build import build_entry

    converted = convert_entry(options, table, path, problems)
    if converted is None:
        return None
    converted.update(built)
    probes = _PROBES.get(cls, {})
    if any(
        option.required and name not in {*converted, *probes} for name, option in options.items()
    ):
        return None
    return build_entry(path, converted, lambda o: cls(**o), problems, [], probes=probes)


def render(settings: object) -> dict[str, Any]:
    """A settings dataclass as plain TOML-ready data (paths as strings, tokens as tables)."""
    data: dict[str, Any] = {}
    for item in fields(settings):  # type: ignore[arg-type]
        value = getattr(settings, item.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = [render(entry) for entry in value]
        elif isinstance(value, Mapping):
            value = dict(value)
        if value is not None:
            data[item.name] = value
    return data
