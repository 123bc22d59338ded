"""A real HTTP server that fails, stalls, throttles and recovers on cue, and a runner that sends
one request the sync way or the async way with one test body."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from buttress.http import AsyncClient, Client
from buttress.testing import ManualClock


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status, headers, a body, and ``stall`` (hold the answer until the
    server is released or this many real seconds pass)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    stall: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once, not 40 ms apart
    server: _Server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        reply, number = self.server.owner.next_reply(self.command, path, dict(self.headers), body)
        if reply.stall:
            self.server.owner.released.wait(reply.stall)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("X-Request-Number", str(number))
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _answer

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FaultServer

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up on a stalled answer has closed its end: expected here.
        if not isinstance(sys.exc_info()[1], ConnectionError | OSError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class FaultServer:
    """A threaded HTTP/1.1 server on 127.0.0.1. ``script(path, *replies)`` queues answers for a
    path (the last one repeats; unscripted paths answer 200 "ok"). ``requests`` records
    (method, path, headers, body); ``release()`` ends every stall at once."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.released = threading.Event()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def script(self, path: str, *replies: Reply | int) -> None:
        """Answer ``path`` with ``replies`` in order (an int is a status), the last repeating."""
        with self._lock:
            self._scripts[path] = [r if isinstance(r, Reply) else Reply(r) for r in replies]

    def next_reply(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[Reply, int]:
        with self._lock:
            self.requests.append((method, path, headers, body))
            queue = self._scripts.get(path)
            reply = Reply() if not queue else queue.pop(0) if len(queue) > 1 else queue[0]
            return reply, len(self.requests)

    def hits(self, path: str) -> int:
        """How many requests reached ``path``."""
        with self._lock:
            return sum(1 for _, p, _, _ in self.requests if p == path)

    def url(self, path: str = "/ok") -> str:
        return f"http://{self.host}{path}"

    def release(self) -> None:
        self.released.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """A fresh fault server for the test."""
    fault = FaultServer()
    fault.start()
    try:
        yield fault
    finally:
        fault.stop()


@pytest.fixture
def clock() -> ManualClock:
    """Virtual time for every policy: retries and rate-limit waits never really sleep."""
    return ManualClock()


class Runner:
    """Builds a sync or async client and sends requests with it, so one test covers both."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.client: Client | AsyncClient | None = None

    def make(self, **options: Any) -> Client | AsyncClient:
        """A ``Client`` or ``AsyncClient`` with ``options``."""
        self.client = Client(**options) if self.mode == "sync" else AsyncClient(**options)
        return self.client

    async def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request with the client made last."""
        client = self.client
        assert client is not None
        if isinstance(client, AsyncClient):
            return await client.request(method, url, **kwargs)
        return client.request(method, url, **kwargs)

    async def close(self) -> None:
        if isinstance(self.client, AsyncClient):
            await self.client.aclose()
        elif self.client is not None:
            self.client.close()


@pytest.fixture(params=["sync", "async"])
async def runner(request: pytest.FixtureRequest) -> Any:
    """Run the test once with ``Client`` and once with ``AsyncClient``."""
    made = Runner(str(request.param))
    try:
        yield made
    finally:
        await made.close()
