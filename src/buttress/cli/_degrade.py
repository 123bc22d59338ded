"""``buttress degrade status|set|clear``: the running ops server's degradation level.

The commands talk to the admin API of ``buttress serve`` (``--url``, default the configured
``server.host`` and ``server.port``) with a bearer token (``--token`` or ``$BUTTRESS_TOKEN``;
``set`` and ``clear`` need the operator role). ``status`` exits 0 at normal, 1 when degraded,
2 when the server cannot be asked; ``set`` and ``clear`` exit 0 when done, else 2.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from buttress.cli import _render
from buttress.cli._options import ConfigOption, ProfileOption, load_or_exit

__all__ = ["degrade_app"]

degrade_app = typer.Typer(
    help="Show or set the degradation level of the running ops server.", no_args_is_help=True
)

PATH = "/admin/reliability/degradation"
STYLES = {"normal": "bold green", "minor": "yellow", "moderate": "bold yellow"}

UrlOption = Annotated[
    str | None,
    typer.Option(help="the ops server (default: http://server.host:server.port from the config)"),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        envvar="BUTTRESS_TOKEN", show_envvar=True, help="bearer token (viewer reads, operator sets)"
    ),
]


class ApiError(Exception):
    """The server could not be reached or refused the request; ``status`` is the HTTP status
    of a refusal (None when no answer came)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _base_url(url: str | None, config: ConfigOption, profile: str | None) -> str:
    if url is not None:
        return url.rstrip("/")
    loaded = load_or_exit(config, profile)
    if loaded.fleet is not None:
        loaded.fleet.close()  # only the address is needed: let go of the fleet's connections
    server = loaded.server
    host = server.host
    try:
        if ipaddress.ip_address(host).is_unspecified:  # bound everywhere: ask on loopback
            host = "127.0.0.1" if ipaddress.ip_address(host).version == 4 else "::1"
    except ValueError:
        pass
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.port}"


def _request(
    method: str,
    url: str,
    token: str | None,
    timeout: float = 10.0,
    *,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON answer of ``method url`` (with ``body`` sent as JSON); ApiError with the
    server's reason otherwise."""
    headers = {"accept": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    request = urllib.request.Request(url, method=method, headers=headers, data=payload)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", exc.reason)
        except ValueError:
            detail = exc.reason
        raise ApiError(f"HTTP {exc.code}: {detail}", exc.code) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiError(f"cannot reach {url.split('?', 1)[0]}: {reason}") from None


def _fail(exc: ApiError) -> typer.Exit:
    typer.echo(f"buttress degrade: {exc}", err=True)
    return typer.Exit(2)


def _show(status: dict[str, Any], no_color: bool) -> None:
    out = _render.console(no_color)
    level = status["level"]
    line = Text("level: ")
    line.append(level, style=STYLES.get(level, "bold red"))
    line.append(f" since {status['since']}")
    if status["computed"] != level:
        line.append(f" (computed: {status['computed']})")
    out.print(line)
    override = status.get("override")
    if override:
        until = override["expires_at"] or "cleared"
        out.print(f"override: {override['level']} by {override['actor']} until {until}")
        out.print(f"  reason: {override['reason']}")
    if status.get("falls_at"):
        out.print(f"falls to {status['falls_to']} at {status['falls_at']} if nothing changes")
    rules = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("rule", "kind", "level", "holds", "reason"):
        rules.add_column(column, overflow="fold" if column == "reason" else "ellipsis")
    for rule in status["rules"]:
        why = rule["reason"] or (f"error: {rule['error']}" if rule["error"] else "")
        holds = "yes" if rule["holds"] else "no"
        rules.add_row(rule["name"], rule["kind"], rule["level"], holds, why)
    if status["rules"]:
        out.print(rules)
    features = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("feature", "off at", "state", "fallback used"):
        features.add_column(column)
    for feature in status["features"]:
        state = Text("on", style="green") if feature["enabled"] else Text("off", style="red")
        features.add_row(feature["name"], feature["off_at"], state, str(feature["fallback_used"]))
    if status["features"]:
        out.print(features)
    for change in status["history"][-5:]:
        out.print(f"  {change['old']} -> {change['new']}: {change['reason']}")


@degrade_app.command("status")
def status(
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="no colour")] = False,
    config: ConfigOption = None,
    profile: ProfileOption = None,
) -> None:
    """The level, why, the override, the rules, the features and the last changes; exit 0 at
    normal, 1 when degraded, 2 when the server cannot be asked."""
    base = _base_url(url, config, profile)
    try:
        found = _request("GET", base + PATH, token)
    except ApiError as exc:
        raise _fail(exc) from None
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
    else:
        _show(found, no_color)
    raise typer.Exit(0 if found.get("level") == "normal" else 1)


@degrade_app.command("set")
def set_level(
    level: Annotated[
        str, typer.Argument(help="minor, moderate, severe, critical, maintenance or normal")
    ],
    reason: Annotated[str, typer.Option(help="why (kept in the audit log)")],
    expires_in: Annotated[
        float | None,
        typer.Option(min=0.001, help="seconds until the level returns to the computed one"),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
) -> None:
    """Set the level by hand (needs an operator token); it lasts until --expires-in or clear."""
    query: dict[str, str] = {"level": level.lower(), "reason": reason}
    if expires_in is not None:
        query["expires_in"] = repr(expires_in)
    target = f"{_base_url(url, config, profile)}{PATH}/set-level?{urllib.parse.urlencode(query)}"
    try:
        done = _request("POST", target, token)
    except ApiError as exc:
        raise _fail(exc) from None
    override = done["override"]
    until = f" until {override['expires_at']}" if override["expires_at"] else " until cleared"
    typer.echo(f"level: {done['before']['level']} -> {done['after']['level']}{until}")


@degrade_app.command("clear")
def clear(
    reason: Annotated[str | None, typer.Option(help="why (kept in the audit log)")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
) -> None:
    """End the manual level (needs an operator token): the computed level applies again."""
    query = urllib.parse.urlencode({"reason": reason} if reason else {})
    target = f"{_base_url(url, config, profile)}{PATH}/clear" + (f"?{query}" if query else "")
    try:
        done = _request("POST", target, token)
    except ApiError as exc:
        raise _fail(exc) from None
    if not done["cleared"]:
        typer.echo(f"no override was set; level: {done['after']['level']}")
        return
    typer.echo(f"override cleared: {done['before']['level']} -> {done['after']['level']}")
