"""``buttress demo``: the ops server, a flaky upstream on a real socket, and a workload calling it
through fallback -> retry -> circuit breaker -> timeout, live.

The ops server (health probes, admin API with public reads, ``/metrics``, the dashboard, the
periodic jobs; state in ``.buttress/``) listens on 127.0.0.1:``port`` (8000 by default, another
free port if that one is taken). The upstream (``FlakyUpstream``) cycles healthy, errors, slow,
down. The workload calls it ``rate`` times a second with httpx; an HTTP health check watches it.
A status line is printed every second, breaker transitions and health alerts as they happen,
and a summary at the end: after ``duration`` seconds, or on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx

from buttress import events
from buttress.breaker import CircuitBreaker
from buttress.cli._upstream import CYCLE, FlakyUpstream
from buttress.fallback import Fallback
from buttress.health import HealthMonitor, HealthRegistry
from buttress.health.checks import http_check
from buttress.ops import create_app, generate_token, make_server
from buttress.pipeline import Pipeline
from buttress.registry import Registry
from buttress.retry import Backoff, Retry

__all__ = ["LiveSummary", "UpstreamError", "bind", "run_live_demo"]

MAX_IN_FLIGHT = 100
STATE_DIR = Path(".buttress")


class UpstreamError(Exception):
    """The upstream answered with a server error."""

    def __init__(self, status: int) -> None:
        super().__init__(f"upstream answered HTTP {status}")
        self.status = status


@dataclass(slots=True)
class LiveSummary:
    """What the live demo did: calls made, answers fresh or from the fallback, and more."""

    seconds: float = 0.0
    calls: int = 0
    fresh: int = 0
    fallbacks: int = 0
    retries: int = 0
    exhausted: int = 0
    rejected: int = 0
    transitions: list[str] = field(default_factory=list)
    upstream_requests: int = 0
    phases: list[str] = field(default_factory=list)
    ready: dict[str, int] = field(default_factory=dict)
    """Seconds of the run seen with each readiness status."""
    url: str = ""


def bind(host: str, port: int) -> tuple[socket.socket, str | None]:
    """A listening socket on ``host:port``, or on a free port (with a note why) if it is taken."""
    try:
        return socket.create_server((host, port)), None
    except OSError as exc:
        if port == 0:
            raise
        sock = socket.create_server((host, 0))
        taken = sock.getsockname()[1]
        return sock, f"port {port} is not available ({exc.strerror}); using {taken} instead"


def build_pipeline(registry: Registry) -> tuple[Pipeline, CircuitBreaker, Retry, Fallback]:
    """fallback -> retry -> breaker -> per-attempt timeout, every policy in ``registry``."""
    breaker = registry.breaker(
        "upstream", failure_rate=0.5, minimum_calls=10, window=20, open_for=2.0
    )
    retry = registry.retry(
        "upstream-retry",
        on=(httpx.TransportError, UpstreamError, TimeoutError),
        attempts=3,
        backoff=Backoff.exponential(base=0.05, factor=2, cap=0.4, jitter="full"),
        rng=random.Random(1),
    )
    fallback = registry.add(Fallback(value="cached", name="cached-answer"))
    timeout = registry.timeout("attempt-timeout", 0.2)
    pipeline = registry.pipeline("upstream", fallback, retry, breaker, timeout)
    return pipeline, breaker, retry, fallback


class _Live:
    """The running demo: the workload, the printer, and the counts."""

    def __init__(self, *, rate: float, phase: float, seed: int, out: TextIO) -> None:
        self.rate, self.out = rate, out
        self.summary = LiveSummary()
        self.upstream = FlakyUpstream(phase_seconds=phase, seed=seed)
        self.registry = Registry()
        self.pipeline, self.breaker, self.retry, self.fallback = build_pipeline(self.registry)
        self.health = HealthRegistry()
        self.window = [0, 0]  # calls, fresh answers in the current second
        self.tasks: set[asyncio.Task[None]] = set()
        self.started = time.monotonic()

    def say(self, line: str) -> None:
        print(f"{time.monotonic() - self.started:6.1f}s  {line}", file=self.out, flush=True)

    def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.BreakerStateChanged):
            line = f"breaker {event.source!r}: {event.old} -> {event.new} ({event.reason})"
            self.summary.transitions.append(line)
            self.say(line)
        elif isinstance(event, events.HealthAlert):
            self.say(f"alert: {event.source} {event.old} -> {event.new}")

    async def call(self, client: httpx.AsyncClient) -> None:
        async def fetch() -> str:
            response = await client.get(self.upstream.url + "/")
            if response.status_code >= 500:
                raise UpstreamError(response.status_code)
            return "fresh"

        answer = await self.pipeline.acall(fetch)
        self.summary.calls += 1
        self.window[0] += 1
        if answer == "fresh":
            self.summary.fresh += 1
            self.window[1] += 1

    async def workload(self, client: httpx.AsyncClient) -> None:
        interval = 1.0 / self.rate
        due = time.monotonic()
        while True:
            if len(self.tasks) < MAX_IN_FLIGHT:
                task = asyncio.get_running_loop().create_task(self.call(client))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def status(self) -> None:
        report = await self.health.run("readiness", wait=False)
        ready = report.status.ietf
        self.summary.ready[ready] = self.summary.ready.get(ready, 0) + 1
        calls, fresh = self.window
        self.window = [0, 0]
        phase = self.upstream.phase().name
        self.say(
            f"upstream {phase:<7}  calls {calls:3d}  fresh {fresh:3d}  fallback {calls - fresh:3d}"
            f"  breaker {self.breaker.state.value:<9}  ready {ready}"
        )


async def _serve(live: _Live, sock: socket.socket, duration: float | None) -> None:
    out, summary, upstream = live.out, live.summary, live.upstream
    token, digest = generate_token()
    await upstream.start()
    live.health.add(
        http_check("upstream", upstream.url + "/health", timeout=1.0, ttl=1.0, warn_above=250)
    )
    monitor = HealthMonitor(live.health, interval=2.0, cooldown=5.0)
    app = create_app(
        live.registry,
        health=live.health,
        tokens=[("demo-operator", "operator", digest)],
        public_reads=True,
        state_dir=STATE_DIR,
        monitor=monitor,
    )
    server = make_server(app, log_level="warning", access_log=False)
    # Ctrl-C and SIGTERM are the demo's to handle (print the summary, exit 0), not uvicorn's.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    serving = loop.create_task(server.serve(sockets=[sock]))
    host, port = sock.getsockname()[:2]
    summary.url = f"http://{host}:{port}/"
    client = httpx.AsyncClient(timeout=2.0, limits=httpx.Limits(max_connections=MAX_IN_FLIGHT))
    workload: asyncio.Task[None] | None = None
    try:
        while not server.started:
            if serving.done():
                serving.result()  # raises what stopped it
                raise RuntimeError("the ops server stopped while starting")
            await asyncio.sleep(0.02)
        cycle = " -> ".join(p.name for p in CYCLE)
        print(
            f"  dashboard  {summary.url}\n"
            f"  probes     {summary.url}health/ready   metrics {summary.url}metrics\n"
            f"  admin API  {summary.url}admin/reliability/circuit-breakers (reads are public)\n"
            f"  operator token for the dashboard's buttons (this run only): {token}\n"
            f"  upstream   {upstream.url}, cycling {cycle}, {upstream.phase_seconds:g} s each\n"
            f"  state      {STATE_DIR / 'buttress.db'}\n"
            + ("  stop       Ctrl-C\n" if duration is None else f"  runs for   {duration:g} s\n"),
            file=out,
            flush=True,
        )
        live.started = time.monotonic()
        workload = asyncio.get_running_loop().create_task(live.workload(client))
        phase = None
        next_status = live.started + 1.0
        while not stop.is_set() and not serving.done():
            now = time.monotonic()
            if now >= next_status:
                await live.status()
                next_status += 1.0
            if duration is not None and now - live.started >= duration:
                break
            current = upstream.phase()
            if current is not phase:
                phase = current
                summary.phases.append(phase.name)
                live.say(f"upstream is now {phase.name}: {phase.describe()}")
            await asyncio.sleep(0.05)
    finally:
        summary.seconds = time.monotonic() - live.started
        if workload is not None:
            workload.cancel()
        for task in [*live.tasks, *([workload] if workload else [])]:
            task.cancel()
        await asyncio.gather(*live.tasks, *([workload] if workload else []), return_exceptions=True)
        await client.aclose()
        await upstream.close()
        _finish(live)
        server.should_exit = True
        await serving
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _finish(live: _Live) -> None:
    """Fill in the counts and print the summary."""
    summary = live.summary
    retry, snap = live.retry.snapshot(), live.breaker.snapshot()
    summary.fallbacks = live.fallback.snapshot().used
    summary.retries, summary.exhausted = retry.retries, retry.exhausted
    summary.rejected = snap.rejected
    summary.upstream_requests = live.upstream.requests
    ready = ", ".join(f"{status} {n} s" for status, n in sorted(summary.ready.items()))
    print(
        f"\nsummary: {summary.calls} calls in {summary.seconds:.1f} s, {summary.fresh} fresh "
        f"answers, {summary.fallbacks} from the fallback, {summary.retries} retries "
        f"({_count(summary.exhausted, 'call')} gave up), {len(summary.transitions)} breaker "
        "transitions, "
        f"{summary.rejected} calls rejected while the breaker was open (the upstream was spared "
        f"them), {summary.upstream_requests} upstream requests; readiness: {ready or 'n/a'}.",
        file=live.out,
        flush=True,
    )


def run_live_demo(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    duration: float | None = None,
    rate: float = 20.0,
    phase: float = 10.0,
    seed: int = 7,
    out: TextIO | None = None,
) -> LiveSummary:
    """Run the live demo until ``duration`` seconds have passed (None: until Ctrl-C)."""
    stream = out if out is not None else sys.stdout
    live = _Live(rate=rate, phase=phase, seed=seed, out=stream)
    sock, note = bind(host, port)
    print(
        f"buttress demo: a flaky upstream called {rate:g} times a second through "
        "fallback -> retry -> circuit breaker -> timeout, with the ops server",
        file=stream,
        flush=True,
    )
    if note:
        print(f"  note       {note}", file=stream, flush=True)
    defaults = [x for x in events.listeners() if isinstance(x, events.LoggingListener)]
    for listener in defaults:  # the demo prints events itself
        events.remove_listener(listener)
    printer = live.on_event  # one bound method, to remove the very same object later
    events.add_listener(printer, kinds={"breaker.state_changed", "health.alert"})
    try:
        asyncio.run(_serve(live, sock, duration))
    except KeyboardInterrupt:  # Ctrl-C before the demo's own handler was in place
        pass
    finally:
        sock.close()
        events.remove_listener(printer)
        for listener in defaults:
            events.add_listener(listener)
    return live.summary
