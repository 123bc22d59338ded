"""How later parts extend the ops app: guarded routes, lifespan hooks, and cached health bodies."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from buttress._redact import add_secret
from buttress.health import HealthRegistry
from buttress.ops import Access, OpsContext, guard
from buttress.testing import ManualClock

from .conftest import OP, VIEW, client_for


async def test_routes_built_from_the_context_are_guarded(
    make_app: Callable[..., Starlette],
) -> None:
    """routes=f(ctx) adds routes that can use the context and the token guard."""

    def dashboard(ctx: OpsContext) -> list[Route]:
        async def data(request: Request) -> Response:
            names = [b.name for b in ctx.registry.breakers()]
            return JSONResponse({"breakers": names, "who": request.state.token.name})

        return [Route("/dashboard/data", guard(ctx, Access.READ, data))]

    async with client_for(make_app(routes=dashboard)) as client:
        assert (await client.get("/dashboard/data")).status_code == 401
        response = await client.get("/dashboard/data", headers=VIEW)
    assert response.json() == {"breakers": ["db", "payments"], "who": "victor"}


async def test_lifespan_runs_startup_and_shutdown_hooks(
    make_app: Callable[..., Starlette], caplog: pytest.LogCaptureFixture
) -> None:
    """on_startup hooks run in order at startup, on_shutdown in reverse; a failing one is logged
    and the context still closes."""
    app = make_app()
    ctx: OpsContext = app.state.ops
    calls: list[str] = []

    async def start_async() -> None:
        calls.append("start async")

    def broken() -> None:
        raise RuntimeError("hook failed")

    ctx.on_startup += [lambda: calls.append("start sync"), start_async]
    ctx.on_shutdown += [lambda: calls.append("stop first"), broken]
    async with app.router.lifespan_context(app):
        assert calls == ["start sync", "start async"]
    assert calls[-1] == "stop first"
    assert "hook failed" in caplog.text
    assert ctx.store._conn is None


async def test_cached_health_body_follows_results_and_new_secrets(
    make_app: Callable[..., Starlette], clock: ManualClock
) -> None:
    """A probe's body is reused only while the results are the same; a secret registered later
    is masked at once, and a refreshed result shows."""
    health = HealthRegistry(clock=clock)
    outputs = ["token-in-output-4f7a91 seen", "all good"]

    async def api() -> dict[str, str]:
        return {"status": "warn", "message": outputs[0]}

    health.add(api, ttl=5)
    await health.run(fresh=True)
    async with client_for(make_app(health=health)) as client:
        first = await client.get("/health/detailed")
        again = await client.get("/health/detailed")
        add_secret("token-in-output-4f7a91")
        masked = await client.get("/health/detailed")
        outputs.pop(0)
        await health.run(fresh=True)
        fresh = await client.get("/health/detailed")
    assert "token-in-output-4f7a91" in first.text
    assert again.content == first.content
    assert "token-in-output-4f7a91" not in masked.text
    assert "*** seen" in masked.text
    assert fresh.json()["checks"]["api:status"][0]["output"] == "all good"


async def test_operator_token_reaches_guarded_extra_routes(
    make_app: Callable[..., Starlette],
) -> None:
    """An extra route guarded for operators refuses viewers (403) and admits operators."""

    def routes(ctx: OpsContext) -> list[Route]:
        async def act(request: Request) -> Response:
            return JSONResponse({"ok": True})

        return [Route("/dashboard/act", guard(ctx, Access.OPERATE, act), methods=["POST"])]

    async with client_for(make_app(routes=routes)) as client:
        assert (await client.post("/dashboard/act", headers=VIEW)).status_code == 403
        assert (await client.post("/dashboard/act", headers=OP)).status_code == 200
