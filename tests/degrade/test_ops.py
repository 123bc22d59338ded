"""The degradation routes of the ops app: health, status, set-level and clear, with auth,
validation, audit, the OpenAPI document and the scheduled job."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from starlette.applications import Starlette

from buttress import Registry
from buttress.degrade import BreakerRule, DegradationManager
from buttress.health import CONTENT_TYPE, HealthRegistry
from buttress.ops import create_app
from buttress.ops._openapi import openapi_document
from buttress.ops.scheduler import Scheduler
from buttress.testing import ManualClock
from tests.openapi_support import close_after_module, conformance, conformance_app, openapi_schema
from tests.ops.conftest import OP, OPERATOR, TOKENS, VIEW, client_for

ADMIN = "/admin/reliability/degradation"


@pytest.fixture
def manager(registry: Registry, clock: ManualClock) -> Iterator[DegradationManager]:
    """A manager over the breaker ``payments`` with the feature ``recommendations``."""
    manager = DegradationManager(
        [BreakerRule("payments", "moderate")],
        features={"recommendations": "moderate"},
        hysteresis=30,
        registry=registry,
        clock=clock,
    )
    yield manager
    manager.close()


def make_app(
    registry: Registry, health: HealthRegistry, clock: ManualClock, **options
) -> Starlette:
    return create_app(
        registry,
        health=health,
        tokens=TOKENS,
        state_dir=":memory:",
        clock=clock,
        scheduler=options.pop("scheduler", None),
        **options,
    )


@pytest.fixture
async def client(
    registry: Registry, health: HealthRegistry, clock: ManualClock, manager: DegradationManager
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of an ops app whose registry holds the manager."""
    app = make_app(registry, health, clock)
    async with client_for(app) as client:
        yield client
    app.state.ops.close()


async def test_without_a_manager_there_are_no_routes(
    registry: Registry, health: HealthRegistry, clock: ManualClock
) -> None:
    """No manager registered: the routes are neither served (404) nor documented."""
    app = make_app(registry, health, clock)
    try:
        async with client_for(app) as client:
            for method, path in (
                ("GET", "/health/degradation"),
                ("GET", ADMIN),
                ("POST", f"{ADMIN}/set-level?level=minor&reason=x"),
                ("POST", f"{ADMIN}/clear"),
            ):
                answer = await client.request(method, path, headers=OP)
                assert answer.status_code == 404, path
                assert answer.json()["error"] == "not_found"
            paths = (await client.get("/admin/openapi.json", headers=OP)).json()["paths"]
            assert not [path for path in paths if "degradation" in path]
    finally:
        app.state.ops.close()


async def test_health_route_is_public_and_tells_the_level(
    client: httpx.AsyncClient, registry: Registry
) -> None:
    """``/health/degradation`` needs no token: pass at normal, warn above, always 200."""
    normal = await client.get("/health/degradation")
    assert normal.status_code == 200
    assert normal.headers["content-type"] == CONTENT_TYPE
    assert normal.json()["status"] == "pass"
    assert normal.json()["features"] == {"recommendations": True}
    registry.get("payments", "breaker").trip()
    degraded = (await client.get("/health/degradation")).json()
    assert (degraded["status"], degraded["level"], degraded["value"]) == ("warn", "moderate", 2)
    assert degraded["output"] == "circuit breaker 'payments' is forced_open"
    assert degraded["features"] == {"recommendations": False}


async def test_status_needs_a_token_and_shows_everything(client: httpx.AsyncClient) -> None:
    """Reading the status needs a viewer token; it holds rules, features and history."""
    assert (await client.get(ADMIN)).status_code == 401
    status = (await client.get(ADMIN, headers=VIEW)).json()
    assert status["level"] == "normal"
    assert status["rules"][0]["name"] == "payments"
    assert status["features"][0]["enabled"] is True
    assert status["history"] == []


async def test_set_level_and_clear_are_audited(
    client: httpx.AsyncClient, manager: DegradationManager, clock: ManualClock
) -> None:
    """An operator sets a level (reason, expiry) and clears it; both are in the audit log."""
    set_url = f"{ADMIN}/set-level?level=maintenance&reason=db+migration&expires_in=600"
    assert (await client.post(set_url, headers=VIEW)).status_code == 403
    done = await client.post(set_url, headers=OP)
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["before"]["level"], body["after"]["level"]) == ("normal", "maintenance")
    assert body["override"]["actor"] == "alice"
    assert body["override"]["expires_at"]
    assert manager.level.label == "maintenance"
    cleared = (await client.post(f"{ADMIN}/clear?reason=done", headers=OP)).json()
    assert cleared["cleared"] is True
    assert cleared["after"]["level"] == "normal"
    again = (await client.post(f"{ADMIN}/clear", headers=OP)).json()
    assert again["cleared"] is False
    entries = (await client.get("/admin/reliability/audit", headers=VIEW)).json()["entries"]
    actions = [(e["action"], e["actor"], e["reason"]) for e in entries]
    assert actions[:3] == [
        ("degradation.clear", "alice", None),
        ("degradation.clear", "alice", "done"),
        ("degradation.set_level", "alice", "db migration"),
    ]
    assert entries[2]["after"]["override"]["level"] == "maintenance"
    history = (await client.get(ADMIN, headers=VIEW)).json()["history"]
    assert [(h["new"], h["actor"]) for h in history] == [
        ("maintenance", "alice"),
        ("normal", "alice"),
    ]


async def test_reason_may_come_in_the_body(client: httpx.AsyncClient) -> None:
    """The reason may be sent as ``{"reason": ...}`` instead of the query."""
    done = await client.post(
        f"{ADMIN}/set-level?level=minor", headers=OP, json={"reason": "noisy neighbour"}
    )
    assert done.status_code == 200
    assert done.json()["override"]["reason"] == "noisy neighbour"


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("level=worse&reason=x", "level must be one of normal"),
        ("level=minor", "reason is required"),
        ("level=minor&reason=%20", "reason is required"),
        ("level=minor&reason=x&expires_in=0", "expires_in must be seconds"),
        ("level=minor&reason=x&expires_in=nan", "expires_in must be seconds"),
        ("level=minor&reason=x&expires_in=soon", "expires_in must be seconds"),
        ("level=minor&reason=x&colour=red", "unknown query parameter 'colour'"),
    ],
)
async def test_bad_requests_are_refused(
    client: httpx.AsyncClient, manager: DegradationManager, query: str, detail: str
) -> None:
    """Invalid parameters answer 400 naming the problem; the level is unchanged."""
    answer = await client.post(f"{ADMIN}/set-level?{query}", headers=OP)
    assert answer.status_code == 400
    assert detail in answer.json()["detail"]
    assert manager.override is None


def test_openapi_documents_the_routes() -> None:
    """The four routes are in the OpenAPI document, with their 404."""
    assert "/health/degradation" not in openapi_document(public_reads=False)["paths"]
    paths = openapi_document(public_reads=False, degradation=True)["paths"]
    for path in ("/health/degradation", ADMIN, f"{ADMIN}/set-level", f"{ADMIN}/clear"):
        assert path in paths
    assert "404" in paths[f"{ADMIN}/set-level"]["post"]["responses"]
    assert paths["/health/degradation"]["get"]["security"] == []


async def test_the_scheduler_ticks_the_manager(
    registry: Registry, health: HealthRegistry, clock: ManualClock, manager: DegradationManager
) -> None:
    """With a scheduler, the app's startup adds a ``degradation`` job running ``tick``."""
    scheduler = Scheduler()
    app = make_app(registry, health, clock, scheduler=scheduler)
    async with app.router.lifespan_context(app):
        job = scheduler.get("degradation")
        assert job.interval == manager.interval
        run = await scheduler.run("degradation")
        assert run.outcome == "ok"


def _app_with_manager() -> Starlette:
    """An ops app whose registry holds a manager with a feature, for the conformance test."""
    registry = Registry()
    registry.breaker("payments")
    DegradationManager(
        [BreakerRule("payments", "moderate")], features={"recs": "minor"}, registry=registry
    )
    return conformance_app(registry, tokens=TOKENS)


CONFORMANCE_APP = _app_with_manager()
SCHEMA = openapi_schema(CONFORMANCE_APP, "degradation", token=OPERATOR)
_close_conformance_app = close_after_module(CONFORMANCE_APP, "degradation")


@SCHEMA.parametrize()
@conformance(max_examples=15)
def test_routes_conform_to_their_document(case: schemathesis.Case[Any]) -> None:
    """Generated requests to the degradation routes, with a manager registered, get
    documented statuses and bodies."""
    case.call_and_validate()
