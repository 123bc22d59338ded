"""What the commands print: the health table, configuration errors and summaries."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from buttress.health import CheckOutcome, HealthReport, Status

if TYPE_CHECKING:
    from buttress.config import Config, ConfigFileError

__all__ = ["console", "errors", "report", "summary"]

STYLES = {
    Status.PASS: "bold green",
    Status.WARN: "bold yellow",
    Status.FAIL: "bold red",
    Status.UNKNOWN: "yellow",
}


def console(no_color: bool, *, stderr: bool = False) -> Console:
    """A console; no colour with ``no_color`` or when the NO_COLOR variable is set."""
    plain = no_color or bool(os.environ.get("NO_COLOR"))
    return Console(
        stderr=stderr,
        no_color=plain,
        color_system=None if plain else "auto",
        highlight=False,
        soft_wrap=True,  # long error lines stay whole, for grep and CI logs
    )


def report(out: Console, health: HealthReport, *, verbose: bool) -> None:
    """The checks as a table (check, status, observed value, latency, output), then the
    overall status."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("observed", justify="right", no_wrap=True)
    table.add_column("latency", justify="right", no_wrap=True)
    table.add_column("output", overflow="fold", min_width=20)
    for name, outcome in health.checks.items():
        table.add_row(*_row(name, outcome))
    out.print(table)
    if verbose:
        for name, outcome in health.checks.items():
            out.print(_details(name, outcome))
    counts = {
        status: sum(1 for o in health.checks.values() if o.status.ietf == status.value)
        for status in (Status.PASS, Status.WARN, Status.FAIL)
    }
    line = Text("status: ")
    line.append(health.status.ietf, style=STYLES[health.status])
    parts = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
    where = f" ({health.group})" if health.group else ""
    line.append(f"{where}, {len(health.checks)} checks" + (f": {parts}" if parts else ""))
    out.print(line)


def _row(name: str, outcome: CheckOutcome) -> list[Text]:
    result = outcome.result
    observed = "" if result.observed_value is None else str(result.observed_value)
    if observed and result.observed_unit:
        observed += f" {result.observed_unit}"
    latency = f"{result.duration * 1000:.1f} ms" if result.duration else ""
    return [
        Text(name),
        Text(result.status.value, style=STYLES[result.status]),
        Text(observed),
        Text(latency),
        Text(result.output + (" (stale)" if outcome.stale else "")),
    ]


def _details(name: str, outcome: CheckOutcome) -> Text:
    """``--verbose``: a check's key, type, criticality, groups and details, on two lines."""
    check, result = outcome.check, outcome.result
    critical = "critical" if check.critical else "non-critical"
    groups = ", ".join(sorted(check.groups))
    text = Text(name, style="bold")
    text.append(f"  {check.key}, {check.component_type}, {critical}, groups: {groups}")
    if outcome.age is not None:
        text.append(f", age {outcome.age:.1f} s")
    if result.details:
        text.append("\n    " + "  ".join(f"{k}={v}" for k, v in result.details.items()))
    return text


def errors(out: Console, error: ConfigFileError) -> None:
    """Every configuration error, one per line, under a line naming the file."""
    head = str(error).splitlines()[0]
    out.print(Text(f"buttress: {head}", style="bold red"))
    for message in error.errors:
        out.print(Text(f"  {message}"))


def summary(out: Console, config: Config) -> None:
    """``ok``, where the configuration came from, and what it declares."""
    where = str(config.path) if config.path is not None else "no file (defaults only)"
    line = Text("ok", style="bold green")
    line.append(f": {where}, profile {config.profile}")
    out.print(line)
    kinds = ("breaker", "retry", "budget", "timeout", "bulkhead", "fallback", "pipeline")
    parts = [
        _count(len(config.registry.of_kind(kind)), kind)
        for kind in kinds
        if config.registry.of_kind(kind)
    ]
    parts.append(_count(len(config.data.get("health", {}).get("checks", {})), "health check"))
    server = config.server
    parts.append(f"server {server.host}:{server.port} with {_count(len(server.tokens), 'token')}")
    out.print(Text("  " + ", ".join(parts)))
    for warning in config.warnings:
        out.print(Text(f"  warning: {warning}", style="yellow"))


def _count(number: int, noun: str) -> str:
    if number == 1:
        return f"1 {noun}"
    return f"{number} {noun[:-1] + 'ies' if noun.endswith('y') else noun + 's'}"
