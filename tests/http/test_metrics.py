"""The clients' statistics on /metrics: per-host requests by outcome, attempts, the latency
histogram; promtool accepts them and prometheus_client writes the same bytes."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from buttress import Registry
from buttress.http import Client, HostPolicy
from buttress.retry import Backoff
from buttress.telemetry import ButtressCollector, render
from buttress.testing import ManualClock
from tests.telemetry._helpers import families, run_promtool, samples, value


@pytest.fixture
def registry() -> Registry:
    """A registry holding one client that made a few requests to two hosts."""
    clock = ManualClock()
    answers = iter([200, 503, 200, 404, 500])

    def handler(request: httpx.Request) -> httpx.Response:
        clock.advance(0.03)  # each answer takes 30 ms of virtual time
        status = next(answers) if request.url.host == "api.example.com" else 200
        return httpx.Response(status)

    found = Registry()
    policy = HostPolicy(backoff=Backoff.constant(0), attempts=2)
    with Client(
        name="billing",
        policies=policy,
        registry=found,
        clock=clock,
        transport=httpx.MockTransport(handler),
    ) as client:
        client.get("https://api.example.com/a")  # 200
        client.get("https://api.example.com/b")  # 503 then 200
        client.get("https://api.example.com/c")  # 404
        client.post("https://api.example.com/d")  # 500, not retried
        client.get("http://127.0.0.1:8080/")
    return found


def test_requests_are_exposed_per_host_and_outcome(registry: Registry) -> None:
    """Each outcome of each host has a sample; attempts count the retry."""
    found = samples(render(registry))
    labels = {"client": "billing", "host": "api.example.com"}
    metric = "buttress_http_client_requests_total"
    assert value(found, metric, **labels, outcome="success") == 2
    assert value(found, metric, **labels, outcome="client_error") == 1
    assert value(found, metric, **labels, outcome="server_error") == 1
    assert value(found, metric, **labels, outcome="timeout") == 0
    assert value(found, "buttress_http_client_attempts_total", **labels) == 5
    assert value(found, "buttress_http_client_retries_total", **labels) == 1
    assert value(found, "buttress_http_client_success_ratio", **labels) == 0.75
    other = {"client": "billing", "host": "127.0.0.1:8080"}
    assert value(found, metric, **other, outcome="success") == 1
    assert value(found, "buttress_http_client_status", **other) == 2


def test_latency_is_a_histogram(registry: Registry) -> None:
    """Durations land in Prometheus' default buckets; _count and _sum agree."""
    found = samples(render(registry))
    labels = {"client": "billing", "host": "api.example.com"}
    name = "buttress_http_client_request_duration_seconds"
    assert value(found, f"{name}_bucket", **labels, le="0.025") == 0
    assert value(found, f"{name}_bucket", **labels, le="0.05") == 3  # single attempts: 30 ms
    assert value(found, f"{name}_bucket", **labels, le="0.1") == 4  # the retried one: 60 ms
    assert value(found, f"{name}_bucket", **labels, le="+Inf") == 4
    assert value(found, f"{name}_count", **labels) == 4
    assert value(found, f"{name}_sum", **labels) == pytest.approx(0.15)
    assert families(render(registry))[name][0] == "histogram"


def test_the_hosts_breakers_are_exposed(registry: Registry) -> None:
    """Each host's breaker is a registered breaker, so its state is on /metrics too."""
    found = samples(render(registry))
    state = value(
        found,
        "buttress_circuit_breaker_state",
        name="billing:api.example.com",
        state="closed",
    )
    assert state == 1


def test_promtool_accepts_the_exposition(registry: Registry) -> None:
    """promtool check metrics finds no problem in the http client families."""
    run_promtool("check", "metrics", stdin=render(registry))


def test_the_collector_writes_what_prometheus_client_writes(registry: Registry) -> None:
    """render()'s writer and generate_latest give the same bytes, histogram included."""
    with ButtressCollector(registry) as collector:
        collector_registry = collector.register(CollectorRegistry())
        assert collector.render() == generate_latest(collector_registry)


def test_telemetry_does_not_need_httpx() -> None:
    """Importing the telemetry (and scraping) never imports httpx or buttress.http."""
    code = (
        "import sys, buttress, buttress.telemetry as t\n"
        "t.render(buttress.Registry())\n"
        "assert 'httpx' not in sys.modules and 'buttress.http' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_the_ops_server_serves_them(registry: Registry) -> None:
    """The ops app's /metrics and readiness show the clients: an end-to-end path through
    buttress serve's routes, in process."""
    from buttress.health import HealthRegistry
    from buttress.http import health_check
    from buttress.ops import create_app

    health = HealthRegistry()
    health.add(health_check(registry))
    app = create_app(
        registry, health=health, public_reads=True, state_dir=":memory:", scheduler=None
    )
    try:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ops.test") as ops:
            metrics = await ops.get("/metrics")
            ready = await ops.get("/health/ready")
    finally:
        app.state.ops.close()
    assert 'buttress_http_client_requests_total{client="billing"' in metrics.text
    assert "http_clients:successRate" in ready.text
