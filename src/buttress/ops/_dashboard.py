"""The live dashboard: one page (``GET /``, public, no data in it) with its scripts and style sheet
(``GET /dashboard/<file>``), and the server-sent event stream it reads
(``GET /admin/reliability/stream``, a read endpoint).

The stream sends ``snapshot`` events (health and every breaker, as JSON) when the snapshot
changes, checked every ``interval`` seconds (default 1), ``events`` events (new entries of the
ops event log, oldest first, the SSE ``id`` being the last ``seq``) and a comment as a keep-alive
when nothing else was sent for ``heartbeat`` seconds. ``?after=<seq>`` (or ``Last-Event-ID``)
resumes the events after a reconnection; otherwise (or when that seq is unknown, the server
having restarted) the first ``events`` event carries the recent ones and ``"reset": true``.
``?once=1`` sends the current state and ends, and so does any request whose ``Accept`` does
not name ``text/event-stream``: only a client that reads event streams gets one that lasts.

One ``LiveFeed`` per app builds the snapshot at most once per half interval, however many
clients listen, so a client costs a comparison of bytes and a look at the event log per tick. A
stream ends when its client disconnects, when the app's lifespan ends, and when ``make_server``'s
uvicorn begins to shut down (uvicorn waits for open responses *before* the lifespan ends, so a
stream that only listened to the lifespan would hold the server up).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.resources
import json
import threading
import time
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from buttress.breaker import CircuitBreaker
from buttress.health import HealthReport
from buttress.ops._context import OpsContext
from buttress.ops._events import redact_tree
from buttress.ops._http import Access, error, guard, strict_query
from buttress.ops._routes_admin import int_param

__all__ = ["ASSETS", "STREAM_PATH", "LiveFeed", "dashboard_routes", "end_streams"]

STREAM_PATH = "/admin/reliability/stream"
ASSETS: dict[str, str] = {
    "app.js": "text/javascript; charset=utf-8",
    "stream.js": "text/javascript; charset=utf-8",
    "views.js": "text/javascript; charset=utf-8",
    "panels.js": "text/javascript; charset=utf-8",
    "breakers.js": "text/javascript; charset=utf-8",
    "capabilities.js": "text/javascript; charset=utf-8",
    "rows.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "degrade.js": "text/javascript; charset=utf-8",
    "featureflags.js": "text/javascript; charset=utf-8",
    "httpclients.js": "text/javascript; charset=utf-8",
    "deadletters.js": "text/javascript; charset=utf-8",
    "deadletter.js": "text/javascript; charset=utf-8",
    "limits.js": "text/javascript; charset=utf-8",
    # the backups panel; not "backups.js": tools pick the backup routes by "backups" in the path
    "recovery.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
"""The files under ``/dashboard/`` and their media types (the page itself is ``/``)."""

# Everything the page loads comes from this server; nothing runs inline.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_RETRY_MS = 2000  # the SSE reconnection delay suggested to clients
_MAX_EVENTS = 200  # events per frame; a faster burst shows as a gap in seq
_MAX_SEQ = 2**62


@functools.cache
def _asset(name: str) -> bytes:
    """The bytes of a dashboard file shipped as package data."""
    return importlib.resources.files("buttress.ops").joinpath("dashboard", name).read_bytes()


def _json(value: Any) -> bytes:
    text = json.dumps(
        redact_tree(value), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )
    return text.encode("utf-8")


def _frame(event: str, data: bytes, *, id: int | None = None, retry: int | None = None) -> bytes:
    """One SSE event; ``data`` is compact JSON, so it holds no line break."""
    head = f"event: {event}\n"
    if id is not None:
        head += f"id: {id}\n"
    if retry is not None:
        head += f"retry: {retry}\n"
    return head.encode("ascii") + b"data: " + data + b"\n\n"


def _health_view(report: HealthReport) -> dict[str, Any]:
    counts = {"pass": 0, "warn": 0, "fail": 0}
    checks = []
    for name, outcome in report.checks.items():
        check, result = outcome.check, outcome.result
        counts[result.status.ietf] += 1
        checks.append(
            {
                "name": name,
                "type": check.component_type,
                "critical": check.critical,
                "status": result.status.value,
                "value": result.observed_value,
                "unit": result.observed_unit,
                "output": result.output,
                "duration": round(result.duration, 6),
                "time": result.time or None,
                "stale": outcome.stale,
            }
        )
    return {"status": report.status.ietf, "counts": counts, "checks": checks}


class LiveFeed:
    """What the dashboard streams send, shared by every client of one app.

    ``interval`` (default 1 s) paces each stream; ``heartbeat`` (default 15 s) is the longest
    silence; ``max_streams`` (default 64) bounds the open streams (more get 503); ``backlog``
    (default 50) is how many past events a new stream starts with.
    """

    def __init__(
        self,
        ctx: OpsContext,
        *,
        interval: float = 1.0,
        heartbeat: float = 15.0,
        max_streams: int = 64,
        backlog: int = 50,
    ) -> None:
        self.ctx = ctx
        self.interval = interval
        self.heartbeat = heartbeat
        self.max_streams = max_streams
        self.backlog = backlog
        self.closed = False
        self._cached = b""
        self._cached_at = float("-inf")
        self._thresholds: dict[int, float] = {}
        self._lock = threading.Lock()
        self._streams: dict[asyncio.Event, asyncio.AbstractEventLoop] = {}

    @property
    def streams(self) -> int:
        """How many streams are open."""
        return len(self._streams)

    def open(self) -> None:
        """Accept streams again (a lifespan starting)."""
        self.closed = False

    def close(self) -> None:
        """End every open stream and make new ones end after their first frame."""
        self.closed = True
        with self._lock:
            streams = list(self._streams.items())
        for stop, loop in streams:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # that loop is closed: its stream is gone already
                pass

    async def snapshot(self) -> bytes:
        """The current snapshot as JSON, rebuilt at most once per half ``interval``."""
        now = time.monotonic()
        if now - self._cached_at < self.interval / 2:
            return self._cached
        report = await self.ctx.health_report(None)
        data = {
            "health": _health_view(report),
            "breakers": [self._breaker(b) for b in self.ctx.registry.breakers()],
        }
        self._cached, self._cached_at = _json(data), now
        return self._cached

    def _breaker(self, breaker: CircuitBreaker) -> dict[str, Any]:
        data = breaker.snapshot().to_dict()
        for key in ("failure_rate", "slow_rate", "since", "retry_after"):
            if isinstance(data[key], float):
                data[key] = round(data[key], 3 if key != "failure_rate" else 4)
        threshold = self._thresholds.get(id(breaker))
        if threshold is None:  # options never change; describe() once per breaker
            threshold = float(breaker.describe()["options"].get("failure_rate", 0.0))
            self._thresholds[id(breaker)] = threshold
        data["threshold"] = threshold
        return data

    def events_after(self, after: int | None) -> list[dict[str, Any]]:
        """Events newer than ``after`` (the last ``backlog`` ones when None), oldest first."""
        if after is None:
            return self.ctx.events.recent(self.backlog)[::-1]
        return self.ctx.events.recent(_MAX_EVENTS, after=after)[::-1]

    def newest_seq(self) -> int:
        """The sequence number of the newest event (0 when none)."""
        newest = self.ctx.events.recent(1)
        return int(newest[0]["seq"]) if newest else 0

    async def run(self, send: Send, stop: asyncio.Event, after: int | None, once: bool) -> None:
        """Write frames to ``send`` until ``stop`` is set (or after one when ``once``)."""
        # A seq from before a restart is larger than any: start again from the backlog, and
        # say so ("reset"), as the client's event numbers no longer apply.
        reset = after is None or after > self.newest_seq()
        after = None if reset else after
        last_snapshot, last_write = b"", time.monotonic()
        retry: int | None = _RETRY_MS
        while not stop.is_set():
            parts: list[bytes] = []
            snapshot = await self.snapshot()
            if snapshot != last_snapshot:
                # "now" (the server's clock, for ages on the page) is not part of the comparison
                now = json.dumps(round(self.ctx.clock.time(), 3)).encode("ascii")
                stamped = b'{"now":' + now + b"," + snapshot[1:]
                parts.append(_frame("snapshot", stamped, retry=retry))
                last_snapshot, retry = snapshot, None
            events = self.events_after(after)
            after = int(events[-1]["seq"]) if events else after or 0
            if events or reset:
                payload = {"events": events, "reset": True} if reset else {"events": events}
                parts.append(_frame("events", _json(payload), id=after if events else None))
                reset = False
            moment = time.monotonic()
            if not parts and moment - last_write >= self.heartbeat:
                parts.append(b": keep-alive\n\n")
            if parts:
                body = b"".join(parts)
                await send({"type": "http.response.body", "body": body, "more_body": True})
                last_write = moment
            if once or self.closed:
                return
            with anyio.move_on_after(self.interval):
                await stop.wait()

    def _register(self, stop: asyncio.Event) -> None:
        with self._lock:
            self._streams[stop] = asyncio.get_running_loop()

    def _unregister(self, stop: asyncio.Event) -> None:
        with self._lock:
            self._streams.pop(stop, None)


class EventStream(Response):
    """A ``text/event-stream`` response fed by a ``LiveFeed``; it ends when the client
    disconnects (the ``http.disconnect`` message) or the feed closes."""

    media_type = "text/event-stream"

    def __init__(self, feed: LiveFeed, *, after: int | None, once: bool) -> None:
        self.feed, self.after, self.once = feed, after, once
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream until the client leaves or the feed stops it."""
        stop = asyncio.Event()
        gone = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            stop.set()

        self.feed._register(stop)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(watch)
                await self.feed.run(send, stop, self.after, self.once)
                tasks.cancel_scope.cancel()
            if not gone:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.feed._unregister(stop)


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id", "")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 19 else None


def _wants_stream(request: Request) -> bool:
    """Whether the client said it reads event streams (``EventSource`` and the page do)."""
    return "text/event-stream" in request.headers.get("accept", "").lower()


def dashboard_routes(ctx: OpsContext, **feed_options: Any) -> list[Route]:
    """``/`` (the page), ``/dashboard/<file>`` and the stream; the feed is kept in
    ``ctx.extra["dashboard"]`` and closed by the lifespan's end."""
    feed = LiveFeed(ctx, **feed_options)
    ctx.extra["dashboard"] = feed
    ctx.on_startup.append(feed.open)
    ctx.on_shutdown.append(feed.close)

    async def page(request: Request) -> Response:
        """The dashboard page."""
        return Response(_asset("index.html"), media_type="text/html", headers=_PAGE_HEADERS)

    def asset(name: str, media_type: str) -> Route:
        async def serve_file(request: Request) -> Response:
            headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
            return Response(_asset(name), media_type=media_type, headers=headers)

        return Route(f"/dashboard/{name}", serve_file, methods=["GET"], name=f"dashboard_{name}")

    async def stream(request: Request) -> Response:
        """Live snapshots and events as server-sent events."""
        once = request.query_params.get("once", "0")
        if once not in ("0", "1"):
            return error(400, "bad_request", "once must be 0 or 1")
        after = int_param(request, "after", None, _MAX_SEQ)
        if isinstance(after, Response):
            return after
        if feed.streams >= feed.max_streams:
            detail = f"too many open streams (at most {feed.max_streams}); try again later"
            return error(503, "busy", detail, {"Retry-After": "5"})
        if after is None:
            after = _last_event_id(request)
        # A client that did not ask for an event stream (a plain HTTP client, a test client
        # that reads whole bodies) gets the current state once rather than a body that never ends.
        return EventStream(feed, after=after, once=once == "1" or not _wants_stream(request))

    return [
        Route("/", page, methods=["GET"], name="dashboard"),
        *(asset(name, media_type) for name, media_type in ASSETS.items()),
        Route(
            STREAM_PATH,
            guard(ctx, Access.READ, strict_query(stream, ("once", "after"))),
            methods=["GET"],
            name="stream",
        ),
    ]


def end_streams(app: object) -> None:
    """End the dashboard streams of ``app`` (an ops app; anything else is ignored). A server
    calls this when it starts to shut down, before it waits for open responses."""
    ctx = getattr(getattr(app, "state", None), "ops", None)
    feed = getattr(ctx, "extra", {}).get("dashboard")
    if isinstance(feed, LiveFeed):
        feed.close()
