"""Resilient HTTP clients: what the per-host pipeline adds to an httpx request.

Every contender sends ``GET https://api.example.com/items`` through the same in-process
``httpx.MockTransport`` answering 200, so the numbers are the clients' own cost, not the
network's. ``httpx`` is the bare client; ``buttress.http`` adds timeouts, a retry, a breaker and
statistics per host (the default ``HostPolicy``); ``tenacity + pybreaker`` is the usual
hand-made equivalent (``Retrying`` and a ``CircuitBreaker`` around ``client.get``), without
per-host statistics. On a real network a request costs 100 us to 100 ms more, so the ratio to
bare httpx shrinks accordingly; target: buttress within 1.3x of bare httpx in process.
"""

from __future__ import annotations

from typing import Any

import httpx

from bench._harness import Contender, Ctx, Prepared, Target, TimingScenario, async_calls, sync_calls

__all__ = ["SCENARIOS"]

URL = "https://api.example.com/items"


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"ok")


async def _aok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"ok")


def _check(client: Any) -> None:
    stats = client.snapshot()[0]
    if stats.requests == 0 or stats.failures or stats.retries:
        raise AssertionError(f"the resilient client did not measure plain successes: {stats}")


def _httpx(ctx: Ctx) -> Prepared:
    client = httpx.Client(transport=httpx.MockTransport(_ok))
    return Prepared(sync_calls(client.get, URL))


def _buttress(ctx: Ctx) -> Prepared:
    from buttress.http import Client

    client = Client(transport=httpx.MockTransport(_ok))
    return Prepared(sync_calls(client.get, URL), lambda: _check(client))


def _tenacity(ctx: Ctx) -> Prepared:
    import pybreaker
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_none

    client = httpx.Client(transport=httpx.MockTransport(_ok), timeout=10)
    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
    retrying = Retrying(
        stop=stop_after_attempt(3),
        wait=wait_none(),
        retry=retry_if_exception_type(httpx.TransportError),
        reraise=True,
    )

    def get(url: str) -> httpx.Response:
        return retrying(breaker.call, client.get, url)

    return Prepared(sync_calls(get, URL))


def _ahttpx(ctx: Ctx) -> Prepared:
    client = httpx.AsyncClient(transport=httpx.MockTransport(_aok))
    return Prepared(async_calls(client.get, URL))


def _abuttress(ctx: Ctx) -> Prepared:
    from buttress.http import AsyncClient

    client = AsyncClient(transport=httpx.MockTransport(_aok))
    return Prepared(async_calls(client.get, URL), lambda: _check(client))


GET = TimingScenario(
    name="http.get",
    title="GET through an in-process transport: bare httpx, buttress.http, tenacity + pybreaker",
    unit="request",
    contenders=(
        Contender("httpx", "httpx", "client.get(url)", _httpx),
        Contender("buttress.http", "buttress", "Client().get(url)", _buttress),
        Contender(
            "tenacity + pybreaker", "tenacity", "Retrying()(breaker.call, client.get)", _tenacity
        ),
    ),
    targets=(
        Target("buttress.http", "httpx", 1.3),
        Target("buttress.http", "tenacity + pybreaker", None),
    ),
    notes=("default HostPolicy: timeouts, 3 attempts, a breaker, statistics per host",),
)

AGET = TimingScenario(
    name="http.get.async",
    title="async GET through an in-process transport: bare httpx.AsyncClient, buttress.http",
    unit="request",
    contenders=(
        Contender("httpx", "httpx", "await client.get(url)", _ahttpx, True),
        Contender("buttress.http", "buttress", "await AsyncClient().get(url)", _abuttress, True),
    ),
    targets=(Target("buttress.http", "httpx", 1.3),),
)

SCENARIOS = (GET, AGET)
