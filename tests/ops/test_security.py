"""Security of the ops app: tokens and roles, failed-auth limits, body limits, mounting, and
no secret in any response."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from buttress import Registry
from buttress.events import HealthAlert, RetryExhausted, emit
from buttress.health import HealthRegistry
from buttress.testing import ManualClock

from .conftest import OP, OPERATOR, VIEW, VIEWER, bearer, client_for

API = "/admin/reliability"
READS = [f"{API}/circuit-breakers", f"{API}/pipelines", f"{API}/audit", f"{API}/events"]
WRITES = [f"{API}/circuit-breakers/db/reset", f"{API}/health/run"]


async def test_missing_and_invalid_tokens_get_401(client: httpx.AsyncClient) -> None:
    """No token, a wrong token or another scheme: 401 with WWW-Authenticate and a JSON error."""
    for path in READS:
        response = await client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == 'Bearer realm="buttress"'
        assert response.json()["error"] == "unauthorized"
    for header in ("Bearer wrong", f"Basic {OPERATOR}", "Bearer", f"bearer  {OPERATOR}x"):
        response = await client.post(WRITES[0], headers={"Authorization": header})
        assert response.status_code == 401, header
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_viewer_reads_but_cannot_mutate(client: httpx.AsyncClient) -> None:
    """A viewer token reads everything and gets 403 on every mutation; an operator does both."""
    for path in READS:
        assert (await client.get(path, headers=VIEW)).status_code == 200, path
        assert (await client.get(path, headers=OP)).status_code == 200, path
    for path in WRITES:
        response = await client.post(path, headers=VIEW)
        assert response.status_code == 403, path
        assert response.json()["error"] == "forbidden"
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
        assert (await client.post(path, headers=OP)).status_code == 200, path


async def test_public_reads_open_reads_only(make_app: Callable[..., Starlette]) -> None:
    """With public_reads, reads need no token; a bad token still fails; mutations still need one."""
    async with client_for(make_app(public_reads=True)) as client:
        for path in READS:
            assert (await client.get(path)).status_code == 200, path
        assert (await client.get(READS[0], headers=bearer("nope"))).status_code == 401
        for path in WRITES:
            assert (await client.post(path)).status_code == 401, path


async def test_no_tokens_configured_locks_the_admin_api(
    make_app: Callable[..., Starlette],
) -> None:
    """Without tokens the admin API refuses everyone; health stays public."""
    async with client_for(make_app(tokens=())) as client:
        assert (await client.get(READS[0], headers=OP)).status_code == 401
        assert (await client.post(WRITES[0], headers=OP)).status_code == 401
        assert (await client.get("/health/live")).status_code == 200


async def test_repeated_failures_are_rate_limited_per_client(
    app: Starlette, clock: ManualClock
) -> None:
    """10 bad tokens in 60 s block that address (429, Retry-After) even for a good token; other
    addresses are unaffected; missing tokens do not count; the block ends with the window."""
    async with client_for(app, "10.0.0.5") as attacker, client_for(app, "10.0.0.6") as other:
        for _ in range(20):
            assert (await attacker.get(READS[0])).status_code == 401  # no token: not counted
        for attempt in range(10):
            response = await attacker.get(READS[0], headers=bearer(f"guess-{attempt}"))
            assert response.status_code == 401
            clock.advance(1)
        blocked = await attacker.get(READS[0], headers=VIEW)
        assert blocked.status_code == 429
        assert blocked.headers["retry-after"] == "50"
        assert blocked.json()["error"] == "too_many_failures"
        assert (await attacker.get("/health/live")).status_code == 200
        assert (await other.get(READS[0], headers=VIEW)).status_code == 200
        clock.advance(50)
        assert (await attacker.get(READS[0], headers=VIEW)).status_code == 200


async def test_body_over_the_limit_is_413(make_app: Callable[..., Starlette]) -> None:
    """A declared or streamed body larger than max_body_bytes is refused with 413."""
    url = f"{API}/circuit-breakers/db/open"
    async with client_for(make_app(max_body_bytes=64)) as client:
        declared = await client.post(url, headers=OP, content=b"{" + b" " * 100 + b"}")
        assert declared.status_code == 413
        assert declared.json()["error"] == "payload_too_large"

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 10

        streamed = await client.post(url, headers=OP, content=chunks())
        assert streamed.status_code == 413
        assert "content-length" not in streamed.request.headers
        small = await client.post(url, headers=OP, json={"reason": "fits"})
        assert small.status_code == 200
        invalid = await client.post(url, headers={**OP, "Content-Length": "x"}, content=b"")
        assert invalid.status_code == 400


async def test_mounted_under_a_prefix(app: Starlette) -> None:
    """The app works mounted at /ops: probes, admin calls and the OpenAPI server URL."""
    outer = Starlette(routes=[Mount("/ops", app=app)])
    async with client_for(outer) as client:
        assert (await client.get("/ops/health/live")).status_code == 200
        reset = await client.post("/ops/admin/reliability/circuit-breakers/db/open", headers=OP)
        assert reset.status_code == 200
        doc = (await client.get("/ops/admin/openapi.json")).json()
        assert doc["servers"] == [{"url": "/ops"}]
        listed = (await client.get("/ops/admin/reliability/circuit-breakers", headers=OP)).json()
        assert listed["circuit_breakers"][0]["state"] == "forced_open"


SECRET = "S3cr3t-pw"
DSN = f"postgresql://app:{SECRET}@db.internal:5432/orders"


async def test_no_endpoint_leaks_a_password_or_token(
    make_app: Callable[..., Starlette], registry: Registry, clock: ManualClock
) -> None:
    """Every documented endpoint, with a failing check echoing a DSN and a token, shows neither."""
    health = HealthRegistry(clock=clock)

    async def orders_db() -> dict[str, object]:
        return {
            "status": "fail",
            "message": f"cannot connect to {DSN} (token {OPERATOR})",
            "dsn": DSN,
            "password": SECRET,
        }

    health.add(orders_db, component_type="datastore")
    app = make_app(health=health, public_reads=True, scheduler=True)
    emit(HealthAlert("orders_db", clock.time(), "pass", "fail", output=f"down: {DSN}"))
    emit(RetryExhausted("orders", clock.time(), 3, "attempts", ConnectionError(DSN)))
    async with client_for(app) as client:
        await client.post(f"{API}/health/run", headers=OP, json={"reason": f"{DSN} {OPERATOR}"})
        doc = (await client.get("/admin/openapi.json")).json()
        seen = 0
        for path, item in doc["paths"].items():
            for method in item:
                url = path.replace("{name}", "health-monitor" if "/jobs/" in path else "db")
                queries = [""] if "reports" not in url else ["", "?format=md", "?format=html"]
                for query in queries:
                    response = await client.request(method, url + query, headers=OP)
                    assert response.status_code in (200, 503), url
                    text = response.text + str(response.headers)
                    for secret in (SECRET, OPERATOR, VIEWER):
                        assert secret not in text, (url, query)
                    seen += 1
        assert seen >= 18
        detailed = (await client.get("/health/detailed")).json()
    output = detailed["checks"]["orders_db:status"][0]["output"]
    assert "postgresql://app:***@db.internal" in output
