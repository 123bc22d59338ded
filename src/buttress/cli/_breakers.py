"""``buttress breakers list|reset|open|disable``: the circuit breakers of a running ops server.

The commands talk to the admin API of ``buttress serve`` (``--url``, default the configured
``server.host`` and ``server.port``, as ``buttress degrade`` does) with a bearer token
(``--token`` or ``$BUTTRESS_TOKEN``). A breaker's state lives in the serving process, so there
is no offline mode: breakers built afresh from the configuration would all be closed.

``list`` (a viewer token) exits 0 when every breaker is closed, 1 when any is not (open,
half_open, forced_open or disabled), 2 when the server cannot be asked. ``reset``, ``open`` and
``disable`` (an operator token; one per action of ``POST /admin/reliability/circuit-breakers/
{name}/{action}``) print the state before and after, exit 0 when done, else 2.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from buttress.cli import _render
from buttress.cli._degrade import ApiError, TokenOption, UrlOption, _base_url, _request
from buttress.cli._options import ConfigOption, ProfileOption

__all__ = ["breakers_app"]

breakers_app = typer.Typer(
    help="List the circuit breakers of the running ops server; reset, open or disable one.",
    no_args_is_help=True,
)

PATH = "/admin/reliability/circuit-breakers"
STYLES = {
    "closed": "bold green",
    "half_open": "bold yellow",
    "open": "bold red",
    "forced_open": "bold red",
    "disabled": "bold magenta",
}

NameArgument = Annotated[
    str, typer.Argument(help="the breaker's name (see: buttress breakers list)")
]
ReasonOption = Annotated[str | None, typer.Option(help="why (kept in the audit log)")]
JsonOption = Annotated[bool, typer.Option("--json", help="print the API's JSON")]
NoColorOption = Annotated[bool, typer.Option("--no-color", help="no colour")]


def _fail(exc: ApiError) -> typer.Exit:
    message = str(exc)
    if exc.status == 401:
        message += " (the token comes from --token or $BUTTRESS_TOKEN)"
    typer.echo(f"buttress breakers: {message}", err=True)
    return typer.Exit(2)


def _state(state: str) -> Text:
    return Text(state, style=STYLES.get(state, "bold red"))


def _since(since: float) -> str:
    return datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d %H:%M:%S")


def show(breakers: list[dict[str, Any]], no_color: bool) -> None:
    """The breakers as a table, then a count by state."""
    out = _render.console(no_color)
    if not breakers:
        out.print("no circuit breakers")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = ("name", "state", "failures", "slow", "window calls", "rejected", "since (UTC)")
    for column in (*columns, "retry after"):
        table.add_column(column, overflow="fold")
    for item in breakers:
        wait = item.get("retry_after")
        table.add_row(
            item["name"],
            _state(item["state"]),
            f"{item['failure_rate']:.1%}",
            f"{item['slow_rate']:.1%}",
            str(item["window_calls"]),
            str(item["rejected"]),
            _since(item["since"]),
            "-" if wait is None else f"{wait:.1f}s",
        )
    out.print(table)
    counts: dict[str, int] = {}
    for item in breakers:
        counts[item["state"]] = counts.get(item["state"], 0) + 1
    line = Text(f"{len(breakers)} breaker{'s' if len(breakers) != 1 else ''}: ")
    for index, (state, count) in enumerate(sorted(counts.items())):
        line.append(", " if index else "")
        line.append(f"{count} ")
        line.append_text(_state(state))
    out.print(line)
    alone = [item["name"] for item in breakers if item.get("degraded")]
    if alone:
        out.print(f"running alone (fleet store unreachable): {', '.join(alone)}")


@breakers_app.command("list")
def list_breakers(
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    no_color: NoColorOption = False,
    config: ConfigOption = None,
    profile: ProfileOption = None,
) -> None:
    """Every breaker and its state; exit 0 when all are closed, 1 when any is not.

    The table: state, failure and slow rates over the window, calls in the window, rejected
    calls, the last state change, and when an open breaker lets a trial through. Exit 2 when
    the server cannot be asked (unreachable, or the token is refused).
    """
    base = _base_url(url, config, profile)
    try:
        found = _request("GET", base + PATH, token)
    except ApiError as exc:
        raise _fail(exc) from None
    breakers: list[dict[str, Any]] = found["circuit_breakers"]
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
    else:
        show(breakers, no_color)
    raise typer.Exit(0 if all(item["state"] == "closed" for item in breakers) else 1)


def _act(
    action: str,
    name: str,
    reason: str | None,
    url: str | None,
    token: str | None,
    as_json: bool,
    no_color: bool,
    config: ConfigOption,
    profile: str | None,
) -> None:
    quoted = urllib.parse.quote(name, safe="")
    target = f"{_base_url(url, config, profile)}{PATH}/{quoted}/{action}"
    body = None if reason is None else {"reason": reason}
    try:
        done = _request("POST", target, token, body=body)
    except ApiError as exc:
        raise _fail(exc) from None
    if as_json:
        sys.stdout.write(json.dumps(done, indent=2) + "\n")
        return
    line = Text(f"{done['name']}: ")
    line.append_text(_state(done["before"]["state"]))
    line.append(" -> ")
    line.append_text(_state(done["after"]["state"]))
    line.append(f" (audit entry {done['audit_id']})")
    _render.console(no_color).print(line)


def _action_command(action: str, doc: str) -> Callable[..., None]:
    """The command for one of the server's breaker actions (the same options for each)."""

    def command(
        name: NameArgument,
        reason: ReasonOption = None,
        url: UrlOption = None,
        token: TokenOption = None,
        as_json: JsonOption = False,
        no_color: NoColorOption = False,
        config: ConfigOption = None,
        profile: ProfileOption = None,
    ) -> None:
        _act(action, name, reason, url, token, as_json, no_color, config, profile)

    command.__doc__ = doc
    command.__name__ = f"{action}_breaker"
    return command


ACTIONS = {
    "reset": "Close the breaker and clear its window; also ends open and disable (operator token).",
    "open": "Trip the breaker: forced_open, rejecting every call until reset (operator token).",
    "disable": "Let every call through until reset, still counting outcomes (operator token).",
}
"""The server's breaker actions (``BREAKER_ACTIONS``, not imported: that needs starlette)."""

for _action, _doc in ACTIONS.items():
    breakers_app.command(_action)(_action_command(_action, _doc))
