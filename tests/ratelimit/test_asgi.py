"""RateLimitMiddleware in process (httpx.ASGITransport): 429s, the RateLimit headers, keys."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from buttress.errors import ConfigError
from buttress.ratelimit import FixedWindow, RateLimiter, RateLimitMiddleware, TokenBucket
from buttress.testing import ManualClock


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


def app_with(limiter: RateLimiter, **options: Any) -> Starlette:
    """A Starlette app whose every request goes through the middleware."""
    middleware = [Middleware(RateLimitMiddleware, limiter=limiter, **options)]
    return Starlette(routes=[Route("/", hello)], middleware=middleware)


def client(app: Any, host: str = "10.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def window(limit: int = 2, seconds: float = 60.0) -> tuple[RateLimiter, ManualClock]:
    clock = ManualClock()
    return RateLimiter(FixedWindow(limit, seconds), name="http", clock=clock), clock


async def test_refuses_with_429_and_headers_after_the_quota() -> None:
    """Within the quota: 200 with RateLimit headers; beyond it: 429, Retry-After, JSON body."""
    limiter, clock = window(2, 60.0)
    async with client(app_with(limiter)) as http:
        first = await http.get("/")
        clock.advance(10.2)
        second = await http.get("/")
        refused = await http.get("/")
    assert (first.status_code, first.text) == (200, "hello")
    assert first.headers["ratelimit-limit"] == "2"
    assert first.headers["ratelimit-remaining"] == "1"
    assert first.headers["ratelimit-reset"] == "60"
    assert first.headers["ratelimit-policy"] == "2;w=60"
    assert second.headers["ratelimit-remaining"] == "0"
    assert second.headers["ratelimit-reset"] == "50"  # 49.8 s, rounded up
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "50"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["content-type"] == "application/json"
    assert json.loads(refused.text) == {
        "error": "rate_limited",
        "detail": "rate limited",
        "retry_after": 50,
    }
    assert limiter.snapshot().refused == 1


async def test_clients_are_limited_by_address() -> None:
    """Each client address has its own quota by default."""
    limiter, _ = window(1)
    app = app_with(limiter)
    async with client(app, "10.0.0.1") as a, client(app, "10.0.0.2") as b:
        assert (await a.get("/")).status_code == 200
        assert (await a.get("/")).status_code == 429
        assert (await b.get("/")).status_code == 200


async def test_header_key_with_address_fallback() -> None:
    """header= keys by that header; requests without it fall back to the client address."""
    limiter, _ = window(1)
    async with client(app_with(limiter, header="X-API-Key")) as http:
        assert (await http.get("/", headers={"x-api-key": "k1"})).status_code == 200
        assert (await http.get("/", headers={"x-api-key": "k1"})).status_code == 429
        assert (await http.get("/", headers={"x-api-key": "k2"})).status_code == 200
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/")).status_code == 429


async def test_key_function_and_exemptions() -> None:
    """key=fn(scope) chooses the key (sync or async); None exempts the request, unlimited."""
    limiter, _ = window(1)

    async def by_path(scope: Any) -> str | None:
        return None if scope["path"] == "/health" else "everyone"

    routes = [Route("/", hello), Route("/health", hello)]
    app = Starlette(
        routes=routes, middleware=[Middleware(RateLimitMiddleware, limiter=limiter, key=by_path)]
    )
    async with client(app) as http:
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/")).status_code == 429
        for _ in range(3):
            health = await http.get("/health")
            assert health.status_code == 200
            assert "ratelimit-limit" not in health.headers
    sync_limiter, _ = window(1)
    async with client(app_with(sync_limiter, key=lambda scope: scope["method"])) as http:
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/")).status_code == 429


async def test_cost_function_and_headers_off() -> None:
    """cost=fn(scope) weighs requests; headers=False leaves allowed responses untouched."""
    limiter = RateLimiter(TokenBucket(1, 5), name="http", clock=ManualClock())
    app = app_with(limiter, cost=lambda scope: 3 if scope["method"] == "POST" else 1, headers=False)
    async with client(app) as http:
        allowed = await http.post("/")
        assert allowed.status_code == 405  # the route has no POST; the limiter still charged 3
        assert "ratelimit-remaining" not in allowed.headers
        assert (await http.get("/")).status_code == 200
        refused = await http.post("/")
    assert refused.status_code == 429
    assert refused.headers["ratelimit-remaining"] == "1"
    assert refused.headers["retry-after"] == "2"


async def test_cost_above_capacity_has_no_retry_after() -> None:
    """A request that can never fit is refused without a Retry-After promise."""
    limiter = RateLimiter(TokenBucket(1, 2), name="http", clock=ManualClock())
    async with client(app_with(limiter, cost=5)) as http:
        refused = await http.get("/")
    assert refused.status_code == 429
    assert "retry-after" not in refused.headers
    assert json.loads(refused.text)["detail"] == "cost exceeds capacity"


async def test_pure_asgi_app_and_other_scopes_pass_through() -> None:
    """Works around a bare ASGI callable; lifespan and websocket scopes are not limited."""
    seen: list[str] = []

    async def bare(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    limiter, _ = window(1)
    middleware = RateLimitMiddleware(bare, limiter=limiter)
    await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    async with client(middleware) as http:
        ok = await http.get("/")
        assert (await http.get("/")).status_code == 429
    assert ok.status_code == 204
    assert ok.headers["ratelimit-limit"] == "1"
    assert seen == ["lifespan", "http"]


def test_options_are_checked() -> None:
    """A non-limiter, header together with key, or a bad cost raise ConfigError."""
    limiter, _ = window()
    with pytest.raises(ConfigError, match="limiter"):
        RateLimitMiddleware(app_with(limiter), limiter="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="header"):
        RateLimitMiddleware(app_with(limiter), limiter=limiter, header="X-Key", key=lambda s: "k")
    with pytest.raises(ConfigError, match="cost"):
        RateLimitMiddleware(app_with(limiter), limiter=limiter, cost=0)
