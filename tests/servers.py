"""Real servers for tests: PostgreSQL and Redis from the environment, and small local servers.

PostgreSQL is at ``BUTTRESS_TEST_POSTGRES_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and Redis at ``BUTTRESS_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/15``, a database of its own). When one is unreachable its tests are
skipped with the reason, except under ``CI=true``, where they fail: CI must not pass by skipping.

The local servers run in threads on 127.0.0.1 with a free port: ``HttpServer`` (paths with
fixed statuses and a slow one), ``SilentServer`` (accepts and never answers: timeouts of
protocols) and ``full_backlog_port`` (connections are never even accepted: TCP connect
timeouts); ``stopped_port()`` gives a port where nothing listens (refusals);
``ops_server(app)`` serves an ops app with uvicorn in a thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NoReturn

import pytest

from buttress._redact import redact

__all__ = [
    "POSTGRES_DSN",
    "REDIS_URL",
    "HttpServer",
    "RedisServer",
    "SilentServer",
    "full_backlog_port",
    "ops_server",
    "postgres_dsn",
    "redis_url",
    "stopped_port",
    "unreachable",
]

POSTGRES_DSN = os.environ.get(
    "BUTTRESS_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("BUTTRESS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

SLOW_SECONDS = 0.06
"""How long ``/slow`` takes to answer."""


def unreachable(what: str, address: str, error: BaseException) -> NoReturn:
    """Skip the test because ``what`` is down, or fail it under ``CI=true``."""
    reason = (
        f"{what} unreachable at {redact(address)}: {redact(str(error)) or type(error).__name__}"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: real-server tests must run)", pytrace=False)
    pytest.skip(reason)


def postgres_dsn() -> str:
    """The test PostgreSQL DSN, after checking that it answers (else skip or fail)."""
    try:
        import psycopg
    except ImportError as exc:
        unreachable("PostgreSQL (psycopg not installed)", POSTGRES_DSN, exc)
    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        unreachable("PostgreSQL", POSTGRES_DSN, exc)
    return POSTGRES_DSN


def redis_url() -> str:
    """The test Redis URL, after checking that it answers PING (else skip or fail)."""
    try:
        import redis
    except ImportError as exc:
        unreachable("Redis (redis-py not installed)", REDIS_URL, exc)
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis.from_url(
        REDIS_URL, socket_connect_timeout=3, socket_timeout=3, retry=Retry(NoBackoff(), 0)
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        unreachable("Redis", REDIS_URL, exc)
    finally:
        client.close()
    return REDIS_URL


def stopped_port() -> int:
    """A local port where nothing listens: bound, noted, closed. Connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def full_backlog_port() -> Iterator[int]:
    """A port whose listen queue is full: a TCP connect to it hangs until its timeout.

    The socket listens with a backlog of 0 and never accepts; one filler connection takes the
    only place in the queue, so Linux drops the SYNs of every later one.
    """
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port: int = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            yield port


class SilentServer:
    """A TCP server that accepts connections and never sends a byte (for protocol timeouts).

    Use as a context manager; ``port`` is where it listens. The connections it accepted are
    closed on exit.
    """

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self._accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self._accepted.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._accepted:
            conn.close()
        self._sock.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        # Recorded before answering: the client may look as soon as it has the answer.
        self.server.requests.append((self.command, path, dict(self.headers)))  # type: ignore[attr-defined]
        if path == "/slow":
            time.sleep(SLOW_SECONDS)
        status = {"/ok": 200, "/slow": 200, "/created": 201, "/error": 500, "/redirect": 302}.get(
            path, 404
        )
        body = f"{status}\n".encode()
        self.send_response(status)
        if path == "/redirect":
            self.send_header("Location", "/ok")
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_POST(self) -> None:
        self._answer(send_body=True)

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that hang up early (TCP checks connect and close at once) are expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class HttpServer:
    """A real HTTP/1.1 server in a thread: ``/ok`` 200, ``/created`` 201, ``/error`` 500,
    ``/redirect`` 302 to ``/ok``, ``/slow`` 200 after 60 ms, anything else 404.

    ``requests`` records (method, path, headers) of what it served.
    """

    def __init__(self) -> None:
        self._server = _QuietServer(("127.0.0.1", 0), _Handler)
        self._server.requests = []  # type: ignore[attr-defined]
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """What the server was asked: (method, path, headers)."""
        return self._server.requests  # type: ignore[attr-defined,no-any-return]

    def url(self, path: str = "/ok") -> str:
        """The full URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> HttpServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class RedisServer:
    """A ``redis-server`` of a test's own on a free port (``port`` to choose one), stopped and
    started again by the test: Redis goes down and comes back without touching the shared
    test server."""

    def __init__(self, port: int | None = None) -> None:
        if port is None:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its URL, database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and wait until it accepts connections, polling in short steps."""
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not on PATH")
        args = [exe, "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Stop it (SIGTERM) and wait."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@contextlib.contextmanager
def ops_server(app: Any, name: str = "ops-test-server") -> Iterator[str]:
    """``app`` (an ops Starlette app) served by uvicorn in a thread on a free port of
    127.0.0.1; its URL without a trailing slash. Stopped (and checked stopped) on exit."""
    from buttress.ops import make_server

    server = make_server(app, port=0, log_level="warning")
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive(), "uvicorn did not stop"
