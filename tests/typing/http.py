"""Checked by mypy, never run: buttress.http keeps httpx's types."""

from __future__ import annotations

from typing import assert_type

import httpx

from buttress.http import (
    AsyncClient,
    Client,
    ClientResilience,
    HealthThresholds,
    HostPolicy,
    HostStats,
    ResilientTransport,
    health_check,
    resilience_of,
    wrap,
)

policies = {"*": HostPolicy(timeout=5), "api.example.com": {"rate_limit": "60/minute"}}
client = Client(policies=policies, name="api", base_url="https://api.example.com")
assert_type(client.get("/"), httpx.Response)
assert_type(client.snapshot(), list[HostStats])
assert_type(client.resilience, ClientResilience)
assert_type(wrap(httpx.Client(), policies=HostPolicy()), ClientResilience)
assert_type(resilience_of(client), ClientResilience)
assert_type(ResilientTransport(httpx.HTTPTransport(), name="t").resilience, ClientResilience)
assert_type(HealthThresholds(warn_below=0.9).grade(1.0, 10, None, "closed"), tuple[str, str])
health_check(client, name="api", critical=True)


async def uses_async() -> None:
    async with AsyncClient(policies=HostPolicy(hedge_delay=0.1)) as aclient:
        assert_type(await aclient.get("https://example.com/"), httpx.Response)
        stats = aclient.snapshot()[0]
        assert_type(stats.success_rate, float | None)
        assert_type(stats.latency_p99, float | None)
