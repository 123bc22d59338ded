"""The configuration reference (``docs/reference/configuration.md``), generated from the schema.

The keys, their kinds and whether they are required come from ``SECTIONS`` and
``SETTINGS_OPTIONS`` (themselves read from the option dataclasses and constructors); the defaults
come from the same classes. ``python -m buttress.config._reference`` rewrites the page;
``--check`` exits 1 when the committed page is stale (``tests/test_config_reference.py`` does
the same).
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from buttress.breaker import BreakerOptions
from buttress.bulkhead import BulkheadOptions
from buttress.config._backup import REFERENCE_OPTIONS as BACKUP_OPTIONS
from buttress.config._backup import BackupSettings
from buttress.config._dlq import SCALARS as DLQ_SCALARS
from buttress.config._dlq import DLQSettings
from buttress.config._flags import FlagSettings
from buttress.config._fleet import FleetSettings
from buttress.config._schema import SECTIONS, Option, options_of
from buttress.config._settings import SETTINGS_OPTIONS, ServerSettings
from buttress.fallback import FallbackOptions
from buttress.pipeline import PipelineOptions
from buttress.ratelimit import AdaptiveConcurrency, AdaptiveThrottle, WorkQueue
from buttress.retry import RetryBudget, RetryOptions
from buttress.timeout import TimeoutOptions

__all__ = ["PAGE", "main", "render_reference"]

PAGE: Final = Path("docs/reference/configuration.md")
"""Where the page lives, relative to the repository root."""

# Where each named section's defaults are read, and what it builds.
_SOURCES: Final[Mapping[str, tuple[str, Callable[..., Any] | None]]] = {
    "breakers": ("CircuitBreaker", BreakerOptions),
    "budgets": ("RetryBudget", RetryBudget),
    "retries": ("Retry", RetryOptions),
    "timeouts": ("Timeout", TimeoutOptions),
    "bulkheads": ("Bulkhead", BulkheadOptions),
    "fallbacks": ("Fallback", FallbackOptions),
    "limits": ("RateLimiter", None),
    "concurrency": ("ConcurrencyLimiter or AdaptiveConcurrency", AdaptiveConcurrency),
    "throttles": ("AdaptiveThrottle", AdaptiveThrottle),
    "queues": ("WorkQueue", WorkQueue),
    "pipelines": ("Pipeline", PipelineOptions),
}

_KINDS: Final = {
    "exceptions": 'exception name or list of names (`"ConnectionError"`, `"httpx.TransportError"`)',
    "retry_on": "exception name(s), or a list of rule tables `{on, attempts, backoff}`",
    "backoff": 'backoff table `{kind = "exponential", base, factor, cap, jitter}` or a kind name',
    "callable": "dotted path to a function (`module.function`)",
    "budget": "the name of a `[budgets.<name>]` entry",
    "policies": 'list of `"kind.name"` references, outermost first',
    "bool": "boolean",
    "number": "number",
    "any": "value",
}
_EXTRA_DEFAULTS: Final[Mapping[str, Mapping[str, object]]] = {"breakers": {"shared": False}}


def _defaults(source: Callable[..., Any] | None) -> dict[str, object]:
    """Each option's default as read from a dataclass or a constructor (MISSING: required)."""
    if source is None:
        return {}
    if dataclasses.is_dataclass(source):
        found: dict[str, object] = {}
        for item in dataclasses.fields(source):
            if item.default is not dataclasses.MISSING:
                found[item.name] = item.default
            elif item.default_factory is not dataclasses.MISSING:
                found[item.name] = item.default_factory()
        return found
    target = source.__init__ if isinstance(source, type) else source  # type: ignore[misc]
    return {
        p.name: p.default
        for p in inspect.signature(target).parameters.values()
        if p.default is not p.empty
    }


def _text(value: object) -> str:
    """A default as a reader writes it in TOML (types by name, None as unset)."""
    if value is None or repr(value) == "<missing>":
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, type):
        return f'`"{value.__name__}"`'
    if isinstance(value, tuple | list):
        if not value:
            return "`[]`"
        if all(isinstance(v, type) for v in value):
            return "`[" + ", ".join(f'"{v.__name__}"' for v in value) + "]`"
    if isinstance(value, Path):
        return f'`"{value}"`'
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, Mapping) and not value:
        return "`{}`"
    text = repr(value)
    if " at 0x" in text:  # a function or object without a stable repr
        return f"`{getattr(value, '__qualname__', type(value).__name__)}`"
    return f"`{text}`"


def _annotations(source: Callable[..., Any] | None) -> dict[str, str]:
    """Each option's annotation as text (for the options whose kind says only "value")."""
    if source is None:
        return {}
    if dataclasses.is_dataclass(source):
        return {f.name: str(f.type) for f in dataclasses.fields(source)}
    target = source.__init__ if isinstance(source, type) else source  # type: ignore[misc]
    return {p.name: str(p.annotation) for p in inspect.signature(target).parameters.values()}


def _value(option: Option, annotation: str) -> str:
    if option.kind != "any":
        return _KINDS.get(option.kind, "value")
    if "Mapping" in annotation or "dict" in annotation:
        return "table of strings"
    if "str" in annotation or "Path" in annotation:
        return "string"
    return "value"


def _table(
    options: Mapping[str, Option], defaults: Mapping[str, object], source: Callable[..., Any] | None
) -> list[str]:
    annotations = _annotations(source)
    lines = ["| key | value | default |", "|---|---|---|"]
    for name, option in options.items():
        if option.required:
            default = "**required**"
        elif name in defaults:
            default = _text(defaults[name])
        else:
            default = "unset"
        value = _value(option, annotations.get(name, ""))
        lines.append(f"| `{name}` | {value} | {default} |")
    return lines


def _settings_sections() -> list[tuple[str, str, Mapping[str, Option], type[Any]]]:
    from buttress.config._settings import AlertSettings, MonitorSettings, TokenSettings

    dlq = options_of(DLQSettings)
    server = {k: v for k, v in SETTINGS_OPTIONS["server"].items() if k != "tokens"}
    return [
        ("[server]", "The ops server (`buttress serve`).", server,
         ServerSettings),
        ("[[server.tokens]]", "A bearer token: `buttress token create --role operator` prints "
         "the token once and this table.", SETTINGS_OPTIONS["token"], TokenSettings),
        ("[health]", "The health monitor run by `buttress serve` (checks go in "
         "`[health.checks.<name>]`, see [Configuration](../configuration.md)).",
         SETTINGS_OPTIONS["monitor"], MonitorSettings),
        ("[[health.alerts]]", "Where health alerts go.", SETTINGS_OPTIONS["alert"],
         AlertSettings),
        ("[fleet]", "The store shared by the processes of a fleet (see [Fleet](../fleet.md)).",
         options_of(FleetSettings), FleetSettings),
        ("[dlq]", "The dead letter queue (see [DLQ](../dlq.md)); also `handlers`, `health` and "
         "`alerts` tables.", {k: dlq[k] for k in DLQ_SCALARS if k in dlq}, DLQSettings),
        ("[flags]", "Feature flags (see [Flags](../flags.md)); also `[flags.defaults.<name>]`.",
         {k: v for k, v in options_of(FlagSettings).items() if k != "defaults"},
         FlagSettings),
        ("[backup]", "Backups (see [Backup](../backup.md#operations)): `store` holds "
         "`catalog.db` and `artifacts/` (or give `catalog` and `destination`); the key's file "
         "or variable, never the key; also `[backup.jobs.<name>]` and "
         "`[backup.drills.<name>]` tables.", BACKUP_OPTIONS, BackupSettings),
    ]  # fmt: skip


def render_reference() -> str:
    """The configuration reference page as Markdown."""
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m buttress.config._reference`: do not edit by hand. -->",
        "",
        "Every key `buttress.toml` accepts, read from the option classes themselves, so a new",
        "option appears here the day it is added. How the file is loaded, profiles, `${VAR}`",
        "interpolation and `BUTTRESS_*` overrides are explained in",
        "[Configuration](../configuration.md). An unknown key is an error naming the key and the",
        "keys allowed; `buttress config check` reports every problem at once. Durations are",
        "numbers of seconds; a string value may be a `${VAR}` taken from the environment.",
        "",
        "## Named policies",
        "",
        "Each entry is a table `[<section>.<name>]`; a pipeline refers to it as `kind.name`.",
    ]
    for section, spec in SECTIONS.items():
        built, source = _SOURCES.get(section, ("", None))
        out += ["", f"### `[{section}.<name>]`", ""]
        what = f"; builds `{built}`" if built else ""
        out += [f"Kind `{spec.kind}`{what}.", ""]
        defaults = {**_defaults(source), **_EXTRA_DEFAULTS.get(section, {})}
        out += _table(spec.options, defaults, source)
    out += ["", "## Settings", ""]
    out += ["Tables that appear once per file."]
    for heading, about, options, cls in _settings_sections():
        out += ["", f"### `{heading}`", "", about, ""]
        out += _table(options, _defaults(cls), cls)
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the page (``--check``: exit 1 if the committed one differs); returns the status."""
    args = sys.argv[1:] if argv is None else list(argv)
    text = render_reference()
    if "--check" in args:
        current = PAGE.read_text() if PAGE.exists() else ""
        if current != text:
            print(f"{PAGE} is stale: run python -m buttress.config._reference", file=sys.stderr)
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
