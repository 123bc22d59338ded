"""ReliabilityMiddleware: a named pipeline around protected path prefixes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import buttress
from buttress import Bulkhead, CircuitBreaker, Registry, Retry, Timeout
from buttress._policy import Policy
from buttress.errors import ConfigError, RateLimitedError
from buttress.ops import ReliabilityMiddleware
from buttress.testing import ManualClock

from .conftest import client_for

ROUTES = {"/api/v1/messages/": "messages", "/api/v1/webhooks/": "webhooks"}


def downstream(clock: ManualClock, calls: list[str]) -> Starlette:
    """An app with fast, failing, slow and streaming endpoints that records each call."""

    async def endpoint(request: Request) -> Response:
        what = request.path_params["what"]
        calls.append(what)
        if what == "fail":
            return PlainTextResponse("boom", status_code=502)
        if what == "slow":
            await clock.asleep(5)
        return PlainTextResponse(f"ok {what}", headers={"X-App": "yes"})

    return Starlette(
        routes=[
            Route("/api/v1/messages/{what}", endpoint, methods=["GET", "POST"]),
            Route("/api/v1/webhooks/{what}", endpoint),
            Route("/other/{what}", endpoint),
        ]
    )


@pytest.fixture
def setup(clock: ManualClock) -> tuple[Registry, CircuitBreaker, list[str], Any]:
    """A registry with a messages pipeline (breaker around a 1 s timeout), the app and its calls."""
    registry = Registry(clock=clock)
    breaker = registry.breaker("msgs", minimum_calls=2, window=2, open_for=12.5)
    registry.pipeline("messages", breaker, registry.timeout("t", 1.0))
    registry.pipeline("webhooks", registry.get("t", "timeout"))
    calls: list[str] = []
    app = ReliabilityMiddleware(downstream(clock, calls), registry=registry, routes=ROUTES)
    return registry, breaker, calls, app


async def test_success_passes_through_untouched(setup: Any) -> None:
    """A protected request that succeeds returns the app's response and counts a success."""
    _, breaker, calls, app = setup
    async with client_for(app) as client:
        response = await client.get("/api/v1/messages/hello")
    assert (response.status_code, response.text, response.headers["x-app"]) == (
        200,
        "ok hello",
        "yes",
    )
    assert calls == ["hello"]
    assert breaker.snapshot().successes == 1


async def test_5xx_counts_as_failure_and_open_breaker_answers_503(setup: Any) -> None:
    """App 5xx responses reach the client as they are and open the breaker; then 503 with
    Retry-After (rounded up) is answered without calling the app; other prefixes still work."""
    _, breaker, calls, app = setup
    async with client_for(app) as client:
        for _ in range(2):
            failed = await client.get("/api/v1/messages/fail")
            assert (failed.status_code, failed.text) == (502, "boom")
        assert breaker.snapshot().failures == 2
        rejected = await client.post("/api/v1/messages/x", content=b"{}")
        other = await client.get("/other/x")
        webhook = await client.get("/api/v1/webhooks/x")
    assert rejected.status_code == 503
    assert rejected.headers["retry-after"] == "13"
    assert rejected.json() == {
        "error": "circuit_open",
        "detail": "msgs: circuit breaker is open (retry after 12.500s)",
        "retry_after": 13,
    }
    assert calls == ["fail", "fail", "x", "x"]  # not the rejected one
    assert other.status_code == 200
    assert webhook.status_code == 200


async def test_failure_status_none_counts_nothing(clock: ManualClock) -> None:
    """With failure_status=None a 5xx response is a success for the breaker."""
    registry = Registry(clock=clock)
    breaker = registry.breaker("b")
    registry.pipeline("messages", breaker)
    app = ReliabilityMiddleware(
        downstream(clock, []), registry=registry, routes=ROUTES, failure_status=None
    )
    async with client_for(app) as client:
        assert (await client.get("/api/v1/messages/fail")).status_code == 502
    assert breaker.snapshot().failures == 0
    assert breaker.snapshot().successes == 1


async def test_slow_request_times_out_with_504(setup: Any) -> None:
    """A request running past the Timeout answers 504; the breaker around it counts it."""
    _, breaker, _, app = setup
    async with client_for(app) as client:
        response = await client.get("/api/v1/messages/slow")
    assert response.status_code == 504
    assert response.json() == {"error": "timeout", "detail": "t: timed out after 1s"}
    assert "retry-after" not in response.headers
    assert breaker.snapshot().failures == 1


async def test_a_started_response_is_never_replaced(clock: ManualClock) -> None:
    """A timeout after the response started is re-raised (the server aborts), never a 504."""
    registry = Registry(clock=clock)
    registry.pipeline("messages", registry.timeout("t", 1.0))
    sent: list[dict[str, Any]] = []

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        await clock.asleep(5)

    async def record(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    app = ReliabilityMiddleware(streaming, registry=registry, routes=ROUTES)
    scope = {"type": "http", "path": "/api/v1/messages/x", "root_path": "", "headers": []}
    with pytest.raises(buttress.TimeoutError):
        await app(scope, receive, record)
    assert [m.get("status") for m in sent] == [200, None]


class _Limited(Policy):
    """A policy that always rate-limits, for the 429 mapping."""

    name = "limit"
    options = None

    async def acall(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        raise RateLimitedError("limit", 2.2)


async def test_rate_limited_is_429_and_full_bulkhead_503(clock: ManualClock) -> None:
    """RateLimitedError answers 429 with Retry-After; a full bulkhead answers 503 without one."""
    registry = Registry(clock=clock)
    registry.pipeline("messages", _Limited())
    bulkhead = Bulkhead(1, name="hooks", clock=clock)
    registry.pipeline("webhooks", bulkhead)
    gate = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await gate.wait()
        await PlainTextResponse("done")(scope, receive, send)

    wrapped = ReliabilityMiddleware(app, registry=registry, routes=ROUTES)
    async with client_for(wrapped) as client:
        limited = await client.get("/api/v1/messages/a")
        holder = asyncio.create_task(client.get("/api/v1/webhooks/a"))
        while bulkhead.snapshot().active == 0:
            await asyncio.sleep(0)
        full = await client.get("/api/v1/webhooks/b")
        gate.set()
        held = await holder
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.json()["error"] == "rate_limited"
    assert full.status_code == 503
    assert "retry-after" not in full.headers
    assert full.json() == {"error": "rejected", "detail": "hooks: bulkhead is full"}
    assert held.status_code == 200


async def test_longest_prefix_and_root_path(clock: ManualClock) -> None:
    """The longest matching prefix picks the pipeline; paths are matched below root_path."""
    registry = Registry(clock=clock)
    general = registry.breaker("general")
    special = registry.breaker("special")
    registry.pipeline("general", general)
    registry.pipeline("special", special)
    routes = {"/api/": "general", "/api/v1/messages/": "special"}
    app = ReliabilityMiddleware(downstream(clock, []), registry=registry, routes=routes)
    transport = httpx.ASGITransport(app, root_path="/svc")
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        await client.get("/svc/api/v1/messages/a")
        await client.get("/svc/api/v1/webhooks/a")
    assert special.snapshot().calls == 1
    assert general.snapshot().calls == 1


async def test_non_http_scopes_pass_through(setup: Any) -> None:
    """Lifespan and websocket scopes go straight to the app."""
    registry, *_ = setup
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    middleware = ReliabilityMiddleware(app, registry=registry, routes=ROUTES)
    await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    await middleware({"type": "websocket", "path": "/api/v1/messages/x"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan", "websocket"]


def test_pipelines_that_would_replay_a_request_are_refused(clock: ManualClock) -> None:
    """Retry, Hedge or Fallback in the pipeline, an unknown pipeline, a bad prefix: ConfigError."""
    registry = Registry(clock=clock)
    registry.pipeline("messages", Retry(on=OSError, clock=clock), Timeout(1.0, clock=clock))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    with pytest.raises(ConfigError, match="cannot protect HTTP requests"):
        ReliabilityMiddleware(app, registry=registry, routes={"/api/v1/messages/": "messages"})
    with pytest.raises(ConfigError, match="must map"):
        ReliabilityMiddleware(app, registry=registry, routes={"api": "messages"})
    late = ReliabilityMiddleware(app, registry=registry, routes={"/x/": "later"})
    with pytest.raises(ConfigError, match="not registered"):
        late._pipeline("later")


async def test_create_app_protects_its_own_extra_routes(
    make_app: Callable[..., Starlette], registry: Registry
) -> None:
    """create_app(protected=..., routes=...) applies the middleware to the app's routes."""

    async def work(request: Request) -> Response:
        return PlainTextResponse("worked")

    app = make_app(
        protected={"/api/v1/": "api"},
        routes=[Route("/api/v1/work", work)],
    )
    registry.breaker("db").trip()
    async with client_for(app) as client:
        blocked = await client.get("/api/v1/work")
        registry.breaker("db").reset()
        passed = await client.get("/api/v1/work")
        health = await client.get("/health/live")
    assert blocked.status_code == 503
    assert blocked.json()["error"] == "circuit_open"
    assert passed.text == "worked"
    assert health.status_code == 200
