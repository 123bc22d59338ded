"""``make_check``: a built-in check from a kind name and plain options (``buttress.toml``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from buttress._redact import redact
from buttress.errors import ConfigError
from buttress.health._model import Check
from buttress.health.checks._command import command_check
from buttress.health.checks._common import GENERIC_OPTIONS
from buttress.health.checks._components import breakers_check
from buttress.health.checks._datastores import postgres_check, redis_check
from buttress.health.checks._network import http_check, tcp_check
from buttress.health.checks._system import (
    cpu_check,
    disk_check,
    event_loop_check,
    file_handles_check,
    memory_check,
    threads_check,
)

if TYPE_CHECKING:
    from buttress.registry import Registry

__all__ = ["CHECK_KINDS", "check_options", "make_check"]

_LATENCY = ("warn_above", "fail_above")
# kind -> (factory, its own options, which of them are required)
_KINDS: dict[str, tuple[Callable[..., Check], tuple[str, ...], tuple[str, ...]]] = {
    "postgres": (postgres_check, ("dsn", *_LATENCY), ("dsn",)),
    "redis": (
        redis_check,
        ("url", *_LATENCY, "memory_warn_above", "memory_fail_above"),
        ("url",),
    ),
    "http": (
        http_check,
        ("url", "expected_status", "method", "headers", "follow_redirects", "verify", *_LATENCY),
        ("url",),
    ),
    "tcp": (tcp_check, ("host", "port", *_LATENCY), ("host", "port")),
    "disk": (disk_check, ("path", *_LATENCY), ()),
    "memory": (memory_check, (*_LATENCY, "rss_warn_above_mb", "rss_fail_above_mb"), ()),
    "cpu": (cpu_check, ("interval", *_LATENCY), ()),
    "file_handles": (file_handles_check, _LATENCY, ()),
    "threads": (threads_check, _LATENCY, ()),
    "event_loop": (event_loop_check, _LATENCY, ()),
    "breakers": (breakers_check, (), ()),
    "command": (command_check, ("command", "shell", "cwd", "env"), ("command",)),
}

CHECK_KINDS: tuple[str, ...] = tuple(_KINDS)
"""The kinds ``make_check`` knows, in the order of the configuration reference."""

_GENERIC = tuple(sorted(GENERIC_OPTIONS))


def check_options(kind: str) -> tuple[str, ...]:
    """Every option ``kind`` accepts, sorted: the generic ones and its own."""
    if kind not in _KINDS:
        raise ConfigError("kind", kind, f"must be one of {', '.join(CHECK_KINDS)}")
    return tuple(sorted({*_GENERIC, *_KINDS[kind][1]}))


def make_check(
    name: str, kind: str, options: Mapping[str, Any], *, registry: Registry | None = None
) -> Check:
    """The built-in check of ``kind`` called ``name``, built from plain ``options``.

    ``kind`` is one of ``CHECK_KINDS``. ``options`` holds the generic options (``critical``,
    ``timeout``, ``ttl``, ``groups``, ``component_type``, ``measurement``) and the kind's own
    (see ``check_options(kind)``); a ``kind`` key equal to ``kind`` is ignored. ``breakers``
    needs ``registry``. Errors are ``ConfigError`` whose ``field`` is the bare option name
    (``timeout``, ``kind``), for the caller to prefix with the check's path; secrets in values
    are masked.
    """
    allowed = check_options(kind)
    factory, _, required = _KINDS[kind]
    kwargs = dict(options)
    if "kind" in kwargs and kwargs.pop("kind") != kind:
        raise ConfigError("kind", options["kind"], f"disagrees with the kind given ({kind!r})")
    for key in sorted(kwargs, key=str):
        if key not in allowed:
            raise ConfigError(
                str(key),
                _masked(kwargs[key]),
                f"is not an option of a {kind} check (options: {', '.join(allowed)})",
            )
    for key in required:
        if key not in kwargs:
            raise ConfigError(key, None, f"is required for a {kind} check")
    try:
        if kind == "breakers":
            if registry is None:
                raise ConfigError("kind", kind, "needs the service's Registry (registry=)")
            return breakers_check(registry, name=name, **kwargs)
        return factory(name=name, **kwargs)
    except ConfigError as exc:
        raise ConfigError(exc.field, _masked(exc.value), exc.expected) from None


def _masked(value: object) -> object:
    """A value fit for an error message: strings redacted, tables not shown."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    if isinstance(value, Mapping):
        return f"<table of {len(value)}>"
    return value
