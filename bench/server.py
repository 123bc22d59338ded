"""The ops server's probes under load: requests per second over loopback, against a bare route.

``server.throughput``: two uvicorn processes with the same settings (``--workers 1 --loop
asyncio --http h11 --no-access-log``): one serving a bare Starlette app whose one route returns a
small JSON body, one serving the ops app (``create_app``, default middleware and jobs, state in
memory) with five readiness checks whose results are cached. A load generator in a third process
(asyncio protocols on raw sockets, HTTP/1.1 keep-alive, ``CONNECTIONS`` connections, each with
one request in flight) drives one target at a time for a fixed time and counts the 200s. Rounds
interleave the targets (rotating which goes first); ratios are the median of per-round ratios.

Targets: ``/health/live`` >= 0.85 and ``/health/ready`` >= 0.75 of the bare route's requests per
second. The table is in ns per request (1e9 / rps) like the others, so a target reads as the
cost ratio ``<= 1/0.85`` (and ``<= 1/0.75``); ``info`` has the throughput ratios themselves.

This module also holds the servers' apps and the load generator::

    python -m uvicorn bench.server:bare_app --factory ...    # the bare app
    python -m uvicorn bench.server:ops_app --factory ...     # the ops app
    python -c "from bench.server import load_main; load_main()"   # JSON requests on stdin
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._harness import Ctx

__all__ = ["SCENARIOS", "ServerScenario", "bare_app", "ops_app", "run_server"]

ROOT = Path(__file__).resolve().parent.parent
UVICORN = ["--workers", "1", "--loop", "asyncio", "--http", "h11", "--no-access-log"]
CONNECTIONS = 32
ROUNDS, SECONDS, WARMUP = 20, 0.5, 0.1
QUICK_ROUNDS, QUICK_SECONDS, QUICK_WARMUP = 1, 0.4, 0.1
LIVE_TARGET, READY_TARGET = 0.85, 0.75


# -- the apps (uvicorn factories) ---------------------------------------------------------------


def bare_app() -> Any:
    """A Starlette app with one route returning a small JSON body."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"status": "pass"})

    return Starlette(routes=[Route("/", hello, methods=["GET"])])


def bare_twin() -> Any:
    """The same bare app, served by a second process: how far apart two equal servers measure."""
    return bare_app()


def ops_app() -> Any:
    """The ops app with five readiness checks cached for an hour (run at startup)."""
    from buttress import Registry
    from buttress.health import HealthRegistry
    from buttress.ops import create_app

    health = HealthRegistry()

    async def ok() -> bool:
        return True

    for index in range(5):
        health.add(ok, name=f"dependency{index}", ttl=3600)
    return create_app(Registry(), health=health, state_dir=":memory:")


# -- the load generator -------------------------------------------------------------------------


class _Client(asyncio.Protocol):
    """One keep-alive connection sending the next request as soon as a response is complete."""

    def __init__(self, request: bytes, state: dict[str, Any]) -> None:
        self.request, self.state = request, state
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        state = self.state
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            at = buffer.find(b"\r\ncontent-length:", 0, end)
            if at < 0:
                raise RuntimeError("a response without content-length")
            stop = buffer.find(b"\r\n", at + 17)
            length = int(buffer[at + 17 : stop if 0 <= stop < end else end])
            if len(buffer) < end + 4 + length:
                return
            ok = buffer[9:12] == b"200"
            del buffer[: end + 4 + length]
            if state["measuring"]:
                state["ok" if ok else "other"] += 1
            if state["stop"]:
                assert self.transport is not None
                self.transport.close()
                return
            assert self.transport is not None
            self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.state["closed"] += 1
        if self.state["closed"] == self.state["connections"]:
            self.state["done"].set_result(None)


async def _load(
    port: int, path: str, *, seconds: float, warmup: float, connections: int
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    request = f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode()
    state: dict[str, Any] = {
        "ok": 0,
        "other": 0,
        "measuring": False,
        "stop": False,
        "closed": 0,
        "connections": connections,
        "done": loop.create_future(),
    }
    for _ in range(connections):
        await loop.create_connection(lambda: _Client(request, state), "127.0.0.1", port)
    await asyncio.sleep(warmup)
    cpu0, t0 = time.process_time(), time.perf_counter()
    state["measuring"] = True
    await asyncio.sleep(seconds)
    state["measuring"] = False
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    state["stop"] = True
    await asyncio.wait_for(state["done"], 10)
    return {
        "ok": state["ok"],
        "other": state["other"],
        "seconds": elapsed,
        "rps": state["ok"] / elapsed,
        "client_cpu": cpu / elapsed,
    }


def load_main() -> None:
    """Answer each JSON request line on stdin with a JSON result line."""
    for line in sys.stdin:
        ask = json.loads(line)
        result = asyncio.run(
            _load(
                ask["port"],
                ask["path"],
                seconds=ask["seconds"],
                warmup=ask["warmup"],
                connections=ask["connections"],
            )
        )
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


# -- the scenario -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A measured URL: which app serves it and the path."""

    label: str
    app: str
    path: str
    form: str


@dataclass(frozen=True)
class ServerScenario:
    """Endpoints measured side by side in requests per second over loopback."""

    name: str
    title: str
    contenders: tuple[Endpoint, ...]
    targets: tuple[tuple[str, str, float | None], ...]
    notes: tuple[str, ...] = ()
    kind: str = field(default="server", init=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _pinning() -> tuple[set[int] | None, set[int] | None]:
    """CPUs for the servers and for the load generator: one each when two are usable, so that
    neither takes the other's core (None: no pinning)."""
    if not hasattr(os, "sched_getaffinity"):  # pragma: no cover - not Linux
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, {cpus[1]}


def _pinned(cpus: set[int] | None) -> Any:
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def _start(factory: str, path: str, cpus: set[int] | None) -> tuple[subprocess.Popen[bytes], int]:
    """A uvicorn process serving ``factory`` on a free port, once ``path`` answers 200."""
    for _ in range(3):  # the free port may be taken meanwhile: try another
        port = _free_port()
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", f"bench.server:{factory}", "--factory"),
                *UVICORN,
                *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_pinned(cpus),
        )
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
                    if sock.recv(64).startswith(b"HTTP/1.1 200"):
                        return process, port
            except OSError:
                pass
            time.sleep(0.05)
        _stop(process)
    raise RuntimeError(f"uvicorn did not start {factory}")


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def run_server(scenario: ServerScenario, ctx: Ctx) -> dict[str, Any]:
    """Start the servers and the load generator, run the interleaved rounds, judge the ratios."""
    quick = ctx.config.quick
    rounds, seconds, warmup = (
        (QUICK_ROUNDS, QUICK_SECONDS, QUICK_WARMUP) if quick else (ROUNDS, SECONDS, WARMUP)
    )
    started = time.perf_counter()
    processes: list[subprocess.Popen[Any]] = []
    ports: dict[str, int] = {}
    samples: dict[str, list[dict[str, Any]]] = {e.label: [] for e in scenario.contenders}
    server_cpus, load_cpus = _pinning()
    try:
        for endpoint in scenario.contenders:
            if endpoint.app not in ports:
                process, ports[endpoint.app] = _start(endpoint.app, endpoint.path, server_cpus)
                processes.append(process)
        load = subprocess.Popen(
            [sys.executable, "-c", "from bench.server import load_main; load_main()"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=_pinned(load_cpus),
        )
        processes.append(load)
        assert load.stdin is not None
        assert load.stdout is not None
        endpoints = list(scenario.contenders)
        for index in range(rounds):
            shift = index % len(endpoints)
            for endpoint in endpoints[shift:] + endpoints[:shift]:
                ask = {
                    "port": ports[endpoint.app],
                    "path": endpoint.path,
                    "seconds": seconds,
                    "warmup": warmup,
                    "connections": CONNECTIONS,
                }
                load.stdin.write(json.dumps(ask) + "\n")
                load.stdin.flush()
                samples[endpoint.label].append(json.loads(load.stdout.readline()))
        load.stdin.close()
        load.wait(timeout=10)
    finally:
        for process in processes:
            _stop(process)
    result = _result(scenario, samples, rounds, time.perf_counter() - started)
    pinned = "not pinned (fewer than two usable CPUs)"
    if server_cpus is not None and load_cpus is not None:
        pinned = f"servers pinned to CPU {min(server_cpus)}, load generator to CPU {min(load_cpus)}"
    result["notes"].append(pinned)
    return result


def _result(
    scenario: ServerScenario,
    samples: dict[str, list[dict[str, Any]]],
    rounds: int,
    seconds: float,
) -> dict[str, Any]:
    contenders: dict[str, Any] = {}
    for endpoint in scenario.contenders:
        runs = samples[endpoint.label]
        ns = sorted(1e9 / run["rps"] for run in runs)
        quartiles = statistics.quantiles(ns, n=4) if len(ns) > 1 else [ns[0], ns[0], ns[0]]
        contenders[endpoint.label] = {
            "status": "ok",
            "median": statistics.median(ns),
            "min": ns[0],
            "iqr": quartiles[2] - quartiles[0],
            "n": sum(run["ok"] for run in runs),
            "form": endpoint.form,
            "samples": ns,
            "rps": [round(run["rps"], 1) for run in runs],
            "non_200": sum(run["other"] for run in runs),
            "client_cpu": [round(run["client_cpu"], 2) for run in runs],
        }
    targets = []
    info: dict[str, Any] = {}
    for subject, peer, floor in scenario.targets:
        ratios = sorted(
            a["rps"] / b["rps"] for a, b in zip(samples[subject], samples[peer], strict=True)
        )
        throughput = statistics.median(ratios)
        spread = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        info[f"{subject} rps ratio"] = round(throughput, 3)
        status = "info" if floor is None else "PASS" if throughput >= floor else "MISS"
        targets.append(
            {
                "kind": "ratio",
                "subject": subject,
                "peer": peer,
                "value": 1 / throughput,  # ns/request ratio, as the table shows
                "limit": None if floor is None else round(1 / floor, 4),
                "ratio_q1_q3": [1 / spread[2], 1 / spread[0]],
                "status": status,
                "throughput_ratio": throughput,
                "throughput_floor": floor,
            }
        )
    for endpoint in scenario.contenders:
        info[f"{endpoint.label} rps"] = round(statistics.median(contenders[endpoint.label]["rps"]))
    return {
        "kind": "server",
        "title": scenario.title,
        "seconds": seconds,
        "unit": "request",
        "repeats": rounds,
        "contenders": contenders,
        "targets": targets,
        "notes": list(scenario.notes),
        "info": info,
    }


BARE, TWIN = "bare Starlette route", "bare route, 2nd process"
LIVE, READY = "/health/live", "/health/ready"

THROUGHPUT = ServerScenario(
    name="server.throughput",
    title="requests/s over loopback, uvicorn 1 worker asyncio h11, load from another process",
    contenders=(
        Endpoint(BARE, "bare_app", "/", 'Starlette Route returning JSONResponse({"status": ...})'),
        Endpoint(TWIN, "bare_twin", "/", "the same app in another process (noise floor)"),
        Endpoint(LIVE, "ops_app", "/health/live", "create_app(...): liveness, cached"),
        Endpoint(READY, "ops_app", "/health/ready", "create_app(...): five cached checks"),
    ),
    targets=((LIVE, BARE, LIVE_TARGET), (READY, BARE, READY_TARGET), (TWIN, BARE, None)),
    notes=(
        f"targets: rps >= {LIVE_TARGET:g} (live) and >= {READY_TARGET:g} (ready) of the bare "
        f"route, i.e. ns/request ratios <= {1 / LIVE_TARGET:.3f} and <= {1 / READY_TARGET:.3f}",
        f"{CONNECTIONS} keep-alive connections, one request in flight each; "
        f"{ROUNDS} rounds of {SECONDS:g} s (+{WARMUP:g} s warm-up) per endpoint, interleaved",
        "client_cpu near 1.0 would mean the load generator, not the server, is the limit",
        "the 2nd-process row measures two equal servers: its distance from 1 is the noise",
    ),
)

SCENARIOS = (THROUGHPUT,)
