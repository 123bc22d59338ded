"""The demo's flaky upstream: a tiny HTTP/1.1 service on a real socket whose behaviour cycles.

``FlakyUpstream`` listens on 127.0.0.1 (a free port) and goes through ``CYCLE`` forever, each
phase lasting ``phase_seconds``: *healthy* (answers in ~10 ms), *errors* (60% of answers are
503), *slow* (answers after 500 ms) and *down* (the listening socket is closed and open
connections are cut: connection refused). ``GET /health`` answers 200 when healthy or slow
(late), 503 during errors. Standard library only (asyncio streams), keep-alive, GET only.

Connections are accepted by hand (a reader callback on a non-blocking socket), not with
``asyncio.start_server``: on Python 3.11 closing an ``asyncio.Server`` while a connection is
being accepted leaks that connection's transport (``Server._attach`` asserts inside the
transport's constructor), which the *down* phase would do several times a cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["CYCLE", "FlakyUpstream", "Phase"]


@dataclass(frozen=True, slots=True)
class Phase:
    """One stretch of the upstream's behaviour."""

    name: str
    error_rate: float
    latency: float
    listening: bool = True

    def describe(self) -> str:
        """What callers see, in a few words."""
        if not self.listening:
            return "connections refused"
        if self.error_rate:
            return f"{self.error_rate:.0%} of answers are 503"
        return f"answers in {self.latency * 1000:.0f} ms"


CYCLE = (
    Phase("healthy", 0.0, 0.01),
    Phase("errors", 0.6, 0.01),
    Phase("slow", 0.0, 0.5),
    Phase("down", 1.0, 0.0, listening=False),
)

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class FlakyUpstream:
    """``await start()``, then ``url``; ``phase()`` says what it does now; ``await close()``.

    ``now`` (default ``time.monotonic``) drives the phases, ``cycle`` (default ``CYCLE``) lists
    them; the listening socket follows the phase within 20 ms.
    """

    def __init__(
        self,
        *,
        phase_seconds: float = 10.0,
        seed: int = 7,
        host: str = "127.0.0.1",
        now: Callable[[], float] = time.monotonic,
        cycle: Sequence[Phase] = CYCLE,
    ) -> None:
        if phase_seconds <= 0:
            raise ValueError(f"phase_seconds: must be > 0, got {phase_seconds!r}")
        self.phase_seconds = phase_seconds
        self.cycle = tuple(cycle)
        self.host = host
        self.port = 0
        self.requests = 0
        self._rng = random.Random(seed)
        self._now = now
        self._start = now()
        self._listener: socket.socket | None = None
        self._accepted: set[socket.socket] = set()  # accepted, not yet handed to a handler
        self._cycler: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[object]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._stopping = asyncio.Event()

    @property
    def url(self) -> str:
        """The service's base URL (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def phase(self) -> Phase:
        """The behaviour now."""
        elapsed = self._now() - self._start
        return self.cycle[int(elapsed // self.phase_seconds) % len(self.cycle)]

    async def start(self) -> None:
        """Listen on a free port and start cycling through the phases."""
        self._start = self._now()
        await self._listen()
        self._cycler = asyncio.get_running_loop().create_task(self._cycle(), name="upstream")

    async def close(self) -> None:
        """Stop listening, cut every connection and wait for the handlers to end (they are not
        cancelled: asyncio 3.11 reports a cancelled connection handler as an error)."""
        if self._cycler is not None:
            self._cycler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cycler
            self._cycler = None
        self._stopping.set()  # handlers waiting out a slow answer stop waiting
        self._unlisten()
        while self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _listen(self) -> None:
        listener = socket.create_server((self.host, self.port))
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener
        asyncio.get_running_loop().add_reader(listener, self._accept, listener)

    def _accept(self, listener: socket.socket) -> None:
        """The loop's reader callback: take the waiting connections, one handler each."""
        loop = asyncio.get_running_loop()
        for _ in range(100):
            try:
                conn, _address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the listener was closed meanwhile
                return
            conn.setblocking(False)
            self._accepted.add(conn)
            task = loop.create_task(self._serve(conn))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    def _unlisten(self) -> None:
        """Stop listening (new connections are refused) and cut the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            asyncio.get_running_loop().remove_reader(listener)
            listener.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._stopping.is_set():  # handlers that never started: close their sockets here
            for conn in list(self._accepted):
                self._accepted.discard(conn)
                conn.close()

    async def _cycle(self) -> None:
        while True:
            phase = self.phase()
            if not phase.listening and self._listener is not None:
                self._unlisten()
            elif phase.listening and self._listener is None:
                with contextlib.suppress(OSError):  # the port was taken meanwhile: try again
                    await self._listen()
            await asyncio.sleep(0.02)

    async def _serve(self, conn: socket.socket) -> None:
        """Wrap an accepted socket in streams and answer on it until it closes."""
        if conn not in self._accepted:  # closed by ``close()`` before this handler started
            return
        self._accepted.discard(conn)
        if self._stopping.is_set():
            conn.close()
            return
        try:
            reader, writer = await asyncio.open_connection(sock=conn)
        except OSError:
            conn.close()
            return
        await self._client(reader, writer)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while not self._stopping.is_set() and (request := await _read_request(reader)):
                status, body = await self._answer(*request)
                if writer.is_closing():
                    break
                payload = json.dumps(body).encode()
                head = (
                    f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
                    "content-type: application/json\r\n"
                    f"content-length: {len(payload)}\r\n\r\n"
                )
                writer.write(head.encode("latin-1") + payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _answer(self, method: str, path: str) -> tuple[int, dict[str, object]]:
        self.requests += 1
        phase = self.phase()
        if method != "GET":
            return 405, {"error": "GET only"}
        if path not in ("/", "/health"):
            return 404, {"error": "not found"}
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), phase.latency)
        if path == "/health":
            status = 503 if phase.error_rate else 200
            return status, {"status": "fail" if status == 503 else "pass", "phase": phase.name}
        if self._rng.random() < phase.error_rate:
            return 503, {"error": f"upstream {phase.name}"}
        return 200, {"answer": self.requests, "phase": phase.name}


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    """The method and path of the next request on the connection (None when it closed)."""
    line = await reader.readline()
    if not line.strip():
        return None
    method, path, _version = line.decode("latin-1").split(" ", 2)
    length = 0
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return method, path.split("?", 1)[0]
