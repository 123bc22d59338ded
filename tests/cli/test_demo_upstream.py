"""The live demo's parts: the flaky upstream on a real socket, the port fallback, the pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket

import httpx
import pytest

from buttress import Registry
from buttress.cli._live import UpstreamError, bind, build_pipeline
from buttress.cli._upstream import CYCLE, FlakyUpstream, Phase

FAST_CYCLE = (
    Phase("healthy", 0.0, 0.0),
    Phase("errors", 0.6, 0.0),
    Phase("slow", 0.0, 0.05),
    Phase("down", 1.0, 0.0, listening=False),
)


async def _until(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_upstream_cycles_healthy_errors_slow_down() -> None:
    """Each phase behaves as described; down refuses connections, then the same port is back."""
    now = [0.0]
    upstream = FlakyUpstream(phase_seconds=10, seed=1, now=lambda: now[0], cycle=FAST_CYCLE)
    await upstream.start()
    port = upstream.port
    try:
        async with httpx.AsyncClient(base_url=upstream.url, timeout=2) as client:
            healthy = await client.get("/")
            assert (healthy.status_code, healthy.json()["phase"]) == (200, "healthy")
            assert (await client.get("/health")).status_code == 200
            assert (await client.get("/nope")).status_code == 404
            assert (await client.post("/")).status_code == 405
            now[0] = 10
            statuses = [(await client.get("/")).status_code for _ in range(40)]
            assert {200, 503} == set(statuses)
            assert (await client.get("/health")).status_code == 503
            now[0] = 20
            slow = await client.get("/")
            assert slow.elapsed.total_seconds() >= 0.05
            assert slow.json()["phase"] == "slow"
            now[0] = 30

            async def refused() -> bool:
                try:
                    await client.get("/")
                except httpx.ConnectError:
                    return True
                except httpx.TransportError:
                    return False  # a kept-alive connection cut: the next attempt connects
                return False

            await _until(refused)
            now[0] = 40

            async def back() -> bool:
                try:
                    return (await client.get("/")).status_code == 200
                except httpx.TransportError:
                    return False

            await _until(back)
        assert upstream.port == port
        assert upstream.requests > 40
    finally:
        await upstream.close()


async def test_close_ends_slow_answers_at_once() -> None:
    """close() during a slow answer cuts the connection and returns without waiting it out."""
    upstream = FlakyUpstream(phase_seconds=60, cycle=[Phase("slow", 0.0, 30.0)])
    await upstream.start()
    async with httpx.AsyncClient(base_url=upstream.url, timeout=5) as client:
        pending = asyncio.create_task(client.get("/"))
        await _until(lambda: _true_after_request(upstream))
        loop = asyncio.get_running_loop()
        started = loop.time()
        await upstream.close()
        assert loop.time() - started < 1.0
        with pytest.raises(httpx.TransportError):
            await pending


async def test_going_down_while_connections_arrive_leaks_nothing() -> None:
    """Going down and closing while clients keep connecting leaves no socket or transport
    unclosed (``asyncio.Server`` on 3.11 leaked one when closed mid-accept)."""
    now = [0.0]
    cycle = [Phase("healthy", 0.0, 0.0), Phase("down", 1.0, 0.0, listening=False)]
    upstream = FlakyUpstream(phase_seconds=10, now=lambda: now[0], cycle=cycle)
    await upstream.start()
    port = upstream.port

    async def connect_and_ask() -> None:
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                await reader.read(1)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    for _ in range(3):
        burst = [asyncio.create_task(connect_and_ask()) for _ in range(60)]
        await asyncio.sleep(0)
        now[0] += 10  # down while the burst is being accepted, then up again
        await asyncio.sleep(0.03)
        now[0] += 10
        await asyncio.gather(*burst)
        await _until(lambda: _listening(upstream))
    burst = [asyncio.create_task(connect_and_ask()) for _ in range(60)]
    await asyncio.sleep(0)
    await upstream.close()
    await asyncio.gather(*burst)
    gc.collect()  # a leaked transport warns here; filterwarnings=error fails the test


async def _listening(upstream: FlakyUpstream) -> bool:
    return upstream.phase().listening and upstream._listener is not None


async def _true_after_request(upstream: FlakyUpstream) -> bool:
    return upstream.requests > 0


def test_bind_falls_back_to_a_free_port() -> None:
    """A taken port gives another free one with a note; port 0 is just any free port."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        sock, note = bind("127.0.0.1", port)
        with sock:
            assert sock.getsockname()[1] != port
            assert note is not None
            assert f"port {port} is not available" in note
    sock, note = bind("127.0.0.1", 0)
    with sock:
        assert note is None


async def test_pipeline_is_registered_and_falls_back() -> None:
    """The demo's policies are in the registry (for the dashboard); a 503 retries then falls
    back."""
    registry = Registry()
    pipeline, breaker, retry, fallback = build_pipeline(registry)
    assert [p["policy"] for p in pipeline.describe()["policies"]] == [
        "Fallback",
        "Retry",
        "CircuitBreaker",
        "Timeout",
    ]
    assert registry.pipelines() == [pipeline]
    assert [b.name for b in registry.breakers()] == ["upstream"]

    async def failing() -> str:
        raise UpstreamError(503)

    assert await pipeline.acall(failing) == "cached"
    assert retry.snapshot().exhausted == 1
    assert fallback.snapshot().used == 1
    assert breaker.snapshot().failures == 3
    assert [p.name for p in CYCLE] == ["healthy", "errors", "slow", "down"]
