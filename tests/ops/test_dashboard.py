"""The dashboard in process: a self-contained page, and its live stream (format, auth, resuming,
live pushes, and ending on disconnect, at shutdown and when uvicorn stops)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import httpx
from starlette.applications import Starlette

from buttress import Registry
from buttress.ops import make_server
from buttress.ops._dashboard import ASSETS, STREAM_PATH, LiveFeed

from .conftest import VIEW, client_for

Message = dict[str, Any]
LIVE = {**VIEW, "Accept": "text/event-stream"}  # what the page (and EventSource) sends


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The events of an event stream: ``{"event", "data" (parsed JSON), "id"?, "retry"?}``."""
    events = []
    for block in re.split(r"\n\n", text):
        fields: dict[str, Any] = {}
        data = []
        for line in block.splitlines():
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value
        if data:
            fields["data"] = json.loads("\n".join(data))
            events.append(fields)
    return events


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [v for k, v in attrs if k in ("src", "href") and v is not None]


def feed_of(app: Starlette) -> LiveFeed:
    """The app's dashboard feed."""
    feed = app.state.ops.extra["dashboard"]
    assert isinstance(feed, LiveFeed)
    return feed


class RawStream:
    """A stream request driven at the ASGI level: read chunk by chunk, disconnect when told."""

    def __init__(self, app: Any, query: str = "", headers: dict[str, str] = LIVE) -> None:
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.gone = asyncio.Event()
        self._asked = False
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": STREAM_PATH,
            "raw_path": STREAM_PATH.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"ops.test")]
            + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("ops.test", 80),
        }
        self.task = asyncio.ensure_future(app(scope, self._receive, self.messages.put))

    async def _receive(self) -> Message:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def next_body(self) -> Message:
        """The next body message (the start message is checked and skipped)."""
        while True:
            message = await asyncio.wait_for(self.messages.get(), 5)
            if message["type"] == "http.response.start":
                assert message["status"] == 200
                continue
            return message


async def test_page_and_assets_are_self_contained(app: Starlette) -> None:
    """/ is HTML that loads only relative files of this server; no file names another host."""
    async with client_for(app) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        parser = _Links()
        parser.feed(page.text)
        assert sorted(parser.links) == ["dashboard/app.css", "dashboard/app.js", "data:,"]
        texts = {"/": page.text}
        for name, media_type in ASSETS.items():
            response = await client.get(f"/dashboard/{name}")
            assert response.status_code == 200, name
            assert response.headers["content-type"] == media_type
            texts[name] = response.text
    for name, text in texts.items():
        assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]", text, re.IGNORECASE), name
        assert '<script src="//' not in text, name
        assert "@import" not in text, name
        for module in re.findall(r'from "\./([\w.]+)"', text):
            assert module in ASSETS, f"{name} imports {module}, which is not served"


async def test_unknown_asset_is_a_json_404(client: httpx.AsyncClient) -> None:
    """Only the dashboard's own files are served: any other name is a 404, never a lookup."""
    for name in ("nope.js", "..%2Findex.html", "index.html", "../_dashboard.py"):
        response = await client.get(f"/dashboard/{name}")
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


async def test_a_client_not_asking_for_a_stream_gets_one_frame(app: Starlette) -> None:
    """A client not accepting text/event-stream gets the current state once, never a hang."""
    async with client_for(app) as client:
        response = await client.get(STREAM_PATH, headers=VIEW)
    assert response.status_code == 200
    assert [e["event"] for e in parse_sse(response.text)] == ["snapshot", "events"]
    assert feed_of(app).streams == 0


async def test_stream_first_frame_is_a_snapshot(app: Starlette, registry: Registry) -> None:
    """The stream starts with a snapshot of health and every breaker, then the recent events."""
    registry.get("db", "breaker").trip()
    async with client_for(app) as client:
        response = await client.get(f"{STREAM_PATH}?once=1", headers=VIEW)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"
    snapshot, events = parse_sse(response.text)
    assert snapshot["event"] == "snapshot"
    assert snapshot["retry"] == "2000"
    data = snapshot["data"]
    assert data["now"] == app.state.ops.clock.time()
    assert data["health"]["status"] in ("pass", "warn", "fail")
    assert {c["name"] for c in data["health"]["checks"]} == {"process", "cache"}
    breakers = {b["name"]: b for b in data["breakers"]}
    assert set(breakers) == {"db", "payments"}
    assert breakers["db"]["state"] == "forced_open"
    assert breakers["db"]["threshold"] == 0.5
    assert {"failure_rate", "calls", "rejected", "since"} <= set(breakers["db"])
    assert events["event"] == "events"
    assert events["data"]["reset"] is True  # a new stream: the recent events, numbered afresh
    [tripped] = [e for e in events["data"]["events"] if e["source"] == "db"]
    assert tripped["new"] == "forced_open"
    assert events["id"] == str(events["data"]["events"][-1]["seq"])


async def test_stream_needs_a_viewer_token(make_app: Callable[..., Starlette]) -> None:
    """Without a token or with a wrong one the stream answers 401; public reads need none."""
    async with client_for(make_app()) as client:
        assert (await client.get(STREAM_PATH)).status_code == 401
        wrong = {"Authorization": "Bearer not-a-token"}
        assert (await client.get(STREAM_PATH, headers=wrong)).status_code == 401
        assert (await client.get(f"{STREAM_PATH}?once=1", headers=VIEW)).status_code == 200
    async with client_for(make_app(public_reads=True)) as client:
        assert (await client.get(f"{STREAM_PATH}?once=1")).status_code == 200
        assert (await client.get("/")).status_code == 200


async def test_stream_query_is_checked(client: httpx.AsyncClient) -> None:
    """A bad once or after value, or an unknown parameter, is a 400 before any streaming."""
    for query in ("once=2", "once=yes", "after=0", "after=x", "limit=3", "once=1&once=1"):
        response = await client.get(f"{STREAM_PATH}?{query}", headers=VIEW)
        assert response.status_code == 400, query
        assert response.json()["error"] == "bad_request"


async def test_stream_resumes_after_a_seq(app: Starlette, registry: Registry) -> None:
    """after= or Last-Event-ID sends only newer events; an unknown seq resets to the recent."""
    breaker = registry.get("db", "breaker")
    breaker.trip()
    breaker.reset()
    seqs = [e["seq"] for e in app.state.ops.events.recent(10)]
    first = min(seqs)
    url = f"{STREAM_PATH}?once=1"
    async with client_for(app) as client:
        resumed = parse_sse((await client.get(f"{url}&after={first}", headers=VIEW)).text)
        header = {**VIEW, "Last-Event-ID": str(first)}
        by_header = parse_sse((await client.get(url, headers=header)).text)
        future = parse_sse((await client.get(f"{url}&after={first + 999}", headers=VIEW)).text)
    for stream in (resumed, by_header):
        assert [e["seq"] for e in stream[1]["data"]["events"]] == [s for s in seqs if s > first]
        assert "reset" not in stream[1]["data"]
    assert sorted(e["seq"] for e in future[1]["data"]["events"]) == sorted(seqs)
    assert future[1]["data"]["reset"] is True


async def test_stream_pushes_changes_as_they_happen(app: Starlette, registry: Registry) -> None:
    """A breaker tripped while a client listens reaches it in the next frame, with its event."""
    feed_of(app).interval = 0.05
    stream = RawStream(app)
    first = parse_sse((await stream.next_body())["body"].decode())
    assert first[0]["event"] == "snapshot"
    registry.get("payments", "breaker").trip()
    pushed: list[dict[str, Any]] = []
    while not any(e["event"] == "events" for e in pushed):
        pushed += parse_sse((await stream.next_body())["body"].decode())
    [snapshot] = [e for e in pushed if e["event"] == "snapshot"]
    states = {b["name"]: b["state"] for b in snapshot["data"]["breakers"]}
    assert states["payments"] == "forced_open"
    stream.gone.set()
    await asyncio.wait_for(stream.task, 2)


async def test_stream_ends_when_the_client_disconnects(app: Starlette) -> None:
    """A client going away ends its stream promptly; the feed forgets it."""
    feed = feed_of(app)
    stream = RawStream(app)
    await stream.next_body()
    assert feed.streams == 1
    stream.gone.set()
    await asyncio.wait_for(stream.task, 2)
    assert feed.streams == 0


async def test_stream_ends_when_the_lifespan_ends(app: Starlette) -> None:
    """Shutting the app down ends open streams (with a final empty body) instead of hanging."""
    async with app.router.lifespan_context(app):
        stream = RawStream(app)
        await stream.next_body()
    await asyncio.wait_for(stream.task, 2)
    messages = [stream.messages.get_nowait() for _ in range(stream.messages.qsize())]
    assert messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert feed_of(app).streams == 0


async def test_open_streams_are_bounded(app: Starlette) -> None:
    """Past max_streams the stream answers 503 with Retry-After."""
    feed_of(app).max_streams = 0
    async with client_for(app) as client:
        response = await client.get(STREAM_PATH, headers=VIEW)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


async def test_snapshot_is_built_once_per_tick(app: Starlette) -> None:
    """Clients within one tick share one snapshot (the same bytes object): cheap per client."""
    feed = feed_of(app)
    feed.interval = 60
    first = await feed.snapshot()
    assert await feed.snapshot() is first


def test_uvicorn_stops_with_a_stream_open(make_app: Callable[..., Starlette]) -> None:
    """make_server's uvicorn ends live streams when it shuts down instead of waiting for them."""
    server = make_server(make_app(), port=0, log_level="warning")
    thread = threading.Thread(target=server.run, name="ops-dashboard-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client,
            client.stream("GET", STREAM_PATH, headers=LIVE) as response,
        ):
            chunks = response.iter_bytes()
            assert b"event: snapshot" in next(chunks)
            server.should_exit = True
            thread.join(timeout=5)
            assert not thread.is_alive(), "uvicorn waited for the stream"
            rest = b"".join(chunks)  # the stream ended: no error, possibly a last frame
            assert b"event: error" not in rest
    finally:
        server.should_exit = True
        thread.join(timeout=5)


class _Ids(HTMLParser):
    """The ids of a page's elements, and which of them are hidden."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hidden: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
            if "hidden" in found:
                self.hidden.add(str(found["id"]))


async def test_every_id_the_scripts_use_is_on_the_page(client: httpx.AsyncClient) -> None:
    """Each element a module looks up by id (including each capability panel and its error
    line) is in the page, and the capability panels start hidden until their API answers."""
    page = _Ids()
    page.feed((await client.get("/")).text)
    used: dict[str, set[str]] = {}
    for name in ASSETS:
        if name.endswith(".js"):
            text = (await client.get(f"/dashboard/{name}")).text
            used[name] = set(re.findall(r'\$\("([\w-]+)"\)', text))
            used[name] |= set(re.findall(r'id: "([\w-]+-panel)"', text))
    for name, ids in used.items():
        assert ids <= page.ids, f"{name} uses ids missing from the page: {ids - page.ids}"
    panels = {"degradation-panel", "flags-panel", "dlq-panel", "http-panel", "limits-panel"}
    panels.add("backups-panel")
    assert panels <= set().union(*used.values())  # each one is loaded by a module
    assert panels <= page.hidden
    assert {f"{panel}-error" for panel in panels} <= page.hidden
