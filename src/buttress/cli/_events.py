"""``buttress events``: what a running ops server saw, read from its admin API.

The command reads ``GET /admin/reliability/events`` of ``buttress serve`` (``--url``, default
the configured ``server.host`` and ``server.port``, as ``buttress breakers`` does) with a viewer
token (``--token`` or ``$BUTTRESS_TOKEN``, never printed). The server keeps its last 500 events
in memory, each numbered ``seq``; the API answers newest first, so the command reverses the page
to print a log that reads top to bottom: local time, kind, source, then the event's own fields
as ``key=value``. ``--kind`` and ``--source`` filter on this side (the API has no filter).

``--follow`` then asks for what came ``after`` the last ``seq`` seen every ``--interval``
seconds until Ctrl-C (exit 0). It says so on stderr when events were lost between two polls
(more than the server keeps) and when the server restarted (its numbers began again). Exit 0,
or 2 when the server cannot be asked (unreachable, a refused token, gone while following).
"""

from __future__ import annotations

import json
import math
import sys
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.text import Text

from buttress.cli import _render
from buttress.cli._degrade import ApiError, TokenOption, UrlOption, _base_url, _request
from buttress.cli._options import ConfigOption, ProfileOption

__all__ = ["Feed", "events", "follow", "line", "matches", "style_of"]

PATH = "/admin/reliability/events"
PAGE = 500
"""The largest page the API serves (and the default number of events the server keeps)."""
KIND_WIDTH = len("breaker.state_changed")
"""Kinds are padded to this width, so sources and fields of the usual kinds line up."""
COMMON = ("seq", "kind", "source", "time")
"""The keys every event has; the others are its own fields."""

Event = dict[str, Any]

_pause: Callable[[float], None] = time.sleep
"""How ``--follow`` waits between polls (tests replace it to act between two polls)."""

_STYLE = {
    "retry.exhausted": "red",
    "backup.failed": "red",
    "drill.failed": "red",
    "dlq.alert": "red",
    "fleet.degraded": "red",
    "backup.completed": "green",
    "drill.completed": "green",
    "fleet.restored": "green",
    "retry.scheduled": "yellow",
    "timeout.expired": "yellow",
    "memory.rising": "yellow",
    "client_pool.recreated": "yellow",
    "queue.item_expired": "yellow",
}
_BREAKER = {
    "open": "red",
    "forced_open": "red",
    "half_open": "yellow",
    "closed": "green",
    "disabled": "magenta",
}
_HEALTH = {"fail": "red", "warn": "yellow", "pass": "green"}
_LEVELS = ("normal", "minor", "moderate", "severe", "critical", "maintenance")


def style_of(event: Event) -> str:
    """The colour of an event's kind: red for openings and failures, green for recoveries,
    yellow for warnings, "" (the terminal's) for the rest. The dashboard's tones, in short."""
    kind, new = event.get("kind", ""), event.get("new")
    if kind == "breaker.state_changed":
        return _BREAKER.get(str(new), "")
    if kind == "health.alert":
        return _HEALTH.get(str(new), "yellow")
    if kind == "degradation.changed":
        if new == "normal":
            return "green"
        worse = new in _LEVELS and event.get("old") in _LEVELS
        return "red" if worse and _LEVELS.index(new) > _LEVELS.index(event["old"]) else "yellow"
    if kind == "loadshed.changed":
        return "red" if event.get("shedding") else "green"
    if kind == "flag.suspended":
        return "yellow" if event.get("suspended") else "green"
    return _STYLE.get(kind, "")


def _when(seconds: object) -> str:
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return "????-??-?? ??:??:??.???"
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _value(value: object) -> str:
    if isinstance(value, str):
        plain = value and not any(c.isspace() or c in "\"'=" for c in value)
        return value if plain else json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.3f}"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def line(event: Event) -> Text:
    """One event as one line: local time (milliseconds), kind (coloured, padded), source, then
    its own fields as ``key=value`` (a string with spaces or quotes in JSON quotes, None as
    null)."""
    kind = str(event.get("kind", "?"))
    text = Text(f"{_when(event.get('time'))}  ")
    text.append(kind, style=style_of(event))
    text.append(" " * max(0, KIND_WIDTH - len(kind)))
    text.append(f"  {event.get('source', '?')}")
    for key, value in event.items():
        if key not in COMMON:
            text.append(f"  {key}={_value(value)}")
    return text


def matches(event: Event, kinds: list[str], source: str | None) -> bool:
    """Whether ``event`` passes the filters: its kind is one of ``kinds`` or in the family of
    one (``breaker`` takes ``breaker.state_changed``), and its source is ``source``."""
    if source is not None and event.get("source") != source:
        return False
    if not kinds:
        return True
    kind = str(event.get("kind", ""))
    return any(kind == k or kind.startswith(k.rstrip(".") + ".") for k in kinds)


class Feed:
    """A server's event log read page by page, oldest first; ``last`` is the newest ``seq``
    seen. ``note`` receives what a reader should know about gaps and restarts."""

    def __init__(self, base: str, token: str | None, note: Callable[[str], None]) -> None:
        self.base, self.token, self.note = base, token, note
        self.last = 0

    def page(self, limit: int, after: int = 0) -> list[Event]:
        """Up to ``limit`` of the newest events after ``after``, oldest first (ApiError when
        the server cannot be asked)."""
        query = {"limit": str(limit), **({"after": str(after)} if after else {})}
        found = _request("GET", f"{self.base}{PATH}?{urllib.parse.urlencode(query)}", self.token)
        page: list[Event] = found["events"]
        page.reverse()
        return page

    def first(self, limit: int, kinds: list[str], source: str | None) -> list[Event]:
        """The last ``limit`` events that pass the filters (looked for among every event the
        server keeps when there are filters)."""
        filtered = bool(kinds) or source is not None
        page = self.page(PAGE if filtered else limit)
        if page:
            self.last = page[-1]["seq"]
        return [e for e in page if matches(e, kinds, source)][-limit:]

    def poll(self) -> list[Event]:
        """The events that came since the last page, oldest first."""
        page = self.page(PAGE, self.last)
        if not page and self.last:
            newest = self.page(1)
            if newest and newest[0]["seq"] < self.last:
                self.note(
                    f"the server restarted (event {newest[0]['seq']} follows {self.last}): "
                    "reading its log from the start"
                )
                self.last = 0
                page = self.page(PAGE)
        if not page:
            return page
        lost = page[0]["seq"] - self.last - 1
        if lost > 0:
            self.note(f"{lost} event(s) not shown: they came faster than the server keeps them")
        self.last = page[-1]["seq"]
        return page


def follow(
    feed: Feed,
    show: Callable[[Event], None],
    *,
    interval: float,
    pause: Callable[[float], None] = time.sleep,
    until: Callable[[], bool] = lambda: False,
) -> None:
    """Poll ``feed`` every ``interval`` seconds and ``show`` each new event, until ``until()``
    holds (by default never: the caller stops it with Ctrl-C). ApiError when the server cannot
    be asked any more."""
    while not until():
        pause(interval)
        for event in feed.poll():
            show(event)


def _fail(exc: ApiError, following: bool) -> typer.Exit:
    message = str(exc)
    if exc.status == 401:
        message += " (the token comes from --token or $BUTTRESS_TOKEN)"
    if following:
        message = f"lost the server while following: {message}"
    typer.echo(f"buttress events: {message}", err=True)
    return typer.Exit(2)


def events(
    url: UrlOption = None,
    token: TokenOption = None,
    limit: Annotated[
        int, typer.Option(min=1, max=PAGE, help="how many events to print first (the newest)")
    ] = 50,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            help="only this kind (breaker.state_changed) or family (breaker); repeatable",
        ),
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="only events of this source (a policy or check name)")
    ] = None,
    keep_following: Annotated[
        bool, typer.Option("--follow", "-f", help="then print new events as they come, to Ctrl-C")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.05, help="seconds between two polls with --follow")
    ] = 1.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="one JSON object per event and line (for jq)")
    ] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="no colour")] = False,
    config: ConfigOption = None,
    profile: ProfileOption = None,
) -> None:
    """Print the recent events of the running ops server, oldest first: breaker transitions,
    retries, fallbacks, health alerts, DLQ alerts, backups... With --follow, then the new ones
    until Ctrl-C. Exit 2 when the server cannot be asked (unreachable, or the token refused)."""
    kinds = list(kind or [])
    out = _render.console(no_color)

    def show(event: Event) -> None:
        if as_json:
            sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
        else:
            out.print(line(event))

    def note(message: str) -> None:
        typer.echo(f"buttress events: {message}", err=True)

    def show_new(event: Event) -> None:
        if matches(event, kinds, source):
            show(event)
            sys.stdout.flush()  # a pipe (| jq) sees each event when it comes

    feed = Feed(_base_url(url, config, profile), token, note)
    following = False
    try:
        for event in feed.first(limit, kinds, source):
            show(event)
        sys.stdout.flush()
        if keep_following:
            following = True
            follow(feed, show_new, interval=interval, pause=_pause)
    except KeyboardInterrupt:
        if not keep_following:
            raise
        raise typer.Exit(0) from None
    except ApiError as exc:
        raise _fail(exc, following) from None
