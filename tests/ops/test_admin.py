"""The admin API: breakers, pipelines, health runs, reports, audit and events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from buttress import Registry
from buttress.errors import StoreError
from buttress.testing import ManualClock

from .conftest import OP, VIEW, client_for

API = "/admin/reliability"


async def test_list_breakers_with_snapshots_and_options(client: httpx.AsyncClient) -> None:
    """GET circuit-breakers lists every breaker, sorted, with its snapshot and options."""
    response = await client.get(f"{API}/circuit-breakers", headers=VIEW)
    assert response.status_code == 200
    breakers = response.json()["circuit_breakers"]
    assert [b["name"] for b in breakers] == ["db", "payments"]
    assert breakers[0]["state"] == "closed"
    assert breakers[0]["calls"] == 0
    assert breakers[0]["options"]["open_for"] == 30.0


@pytest.mark.parametrize(
    ("action", "state"), [("open", "forced_open"), ("disable", "disabled"), ("reset", "closed")]
)
async def test_breaker_actions_change_state_and_are_audited(
    client: httpx.AsyncClient, registry: Registry, action: str, state: str
) -> None:
    """Each POST changes the breaker, answers before/after, and writes an audit entry."""
    if action == "reset":
        registry.breaker("db").trip()
    response = await client.post(
        f"{API}/circuit-breakers/db/{action}", headers=OP, json={"reason": "drill"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["after"]["state"] == state == registry.breaker("db").state.value
    audit = (await client.get(f"{API}/audit", headers=VIEW)).json()["entries"]
    assert audit[0]["id"] == body["audit_id"]
    assert audit[0]["actor"] == "alice"
    assert audit[0]["action"] == f"circuit_breaker.{action}"
    assert audit[0]["target"] == "db"
    assert audit[0]["before"]["state"] == body["before"]["state"]
    assert audit[0]["after"]["state"] == state
    assert audit[0]["client"] == "127.0.0.1"
    assert audit[0]["reason"] == "drill"


async def test_unknown_breaker_is_a_json_404(client: httpx.AsyncClient) -> None:
    """An action on a breaker that does not exist answers 404 with a JSON error."""
    response = await client.post(f"{API}/circuit-breakers/nope/reset", headers=OP)
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "no circuit breaker named 'nope'"}


async def test_action_body_must_be_a_reason_object(client: httpx.AsyncClient) -> None:
    """The optional body is {"reason": str}; anything else is a 400 and changes nothing."""
    for content in (b"not json", b"[1]", b'{"reason": 5}', b'{"other": 1}'):
        response = await client.post(f"{API}/circuit-breakers/db/open", headers=OP, content=content)
        assert response.status_code == 400, content
        assert response.json()["error"] == "bad_request"
    listed = (await client.get(f"{API}/circuit-breakers", headers=OP)).json()
    assert listed["circuit_breakers"][0]["state"] == "closed"
    assert (await client.post(f"{API}/circuit-breakers/db/open", headers=OP)).status_code == 200


async def test_pipelines_are_described(client: httpx.AsyncClient) -> None:
    """GET pipelines returns describe() of each pipeline, outermost policy first."""
    response = await client.get(f"{API}/pipelines", headers=VIEW)
    pipelines = response.json()["pipelines"]
    assert [p["name"] for p in pipelines] == ["api"]
    assert [p["policy"] for p in pipelines[0]["policies"]] == ["Timeout", "CircuitBreaker"]


async def test_health_run_is_fresh_and_audited(client: httpx.AsyncClient) -> None:
    """POST health/run runs every check now, returns the report and audits the run."""
    response = await client.post(f"{API}/health/run", headers=OP)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/health+json"
    report = response.json()
    assert report["status"] == "pass"
    assert set(report["checks"]) == {"process:uptime", "cache:status"}
    entry = (await client.get(f"{API}/audit", headers=OP)).json()["entries"][0]
    assert entry["action"] == "health.run"
    assert entry["after"]["status"] == "pass"


async def test_reliability_report_in_three_formats(
    client: httpx.AsyncClient, registry: Registry, clock: ManualClock
) -> None:
    """The report is JSON by default, Markdown with format=md and HTML with format=html."""
    clock.advance(10)
    registry.breaker("db").trip()
    clock.advance(5)
    await client.post(f"{API}/health/run", headers=OP)
    data = (await client.get(f"{API}/reports/reliability", headers=VIEW)).json()
    db = next(b for b in data["breakers"] if b["name"] == "db")
    assert db["time_in_state"] == {"closed": 10.0, "forced_open": 5.0}
    assert data["period"]["seconds"] == 15.0
    assert data["summary"]["breakers_not_closed"] == 1
    assert {c["name"]: c["availability"] for c in data["checks"]} == {"process": 1.0, "cache": 1.0}
    md = await client.get(f"{API}/reports/reliability?format=md", headers=VIEW)
    assert md.headers["content-type"].startswith("text/markdown")
    assert "# Reliability report" in md.text
    assert "| db | forced_open |" in md.text
    page = await client.get(f"{API}/reports/reliability", params={"format": "html"}, headers=VIEW)
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Reliability report</h1>" in page.text
    assert "<td>forced_open</td>" in page.text
    bad = await client.get(f"{API}/reports/reliability?format=pdf", headers=VIEW)
    assert bad.status_code == 400


async def test_audit_pages_with_limit_and_before(client: httpx.AsyncClient) -> None:
    """The audit log pages newest first; next_before continues, then is null at the end."""
    for action in ("open", "reset", "disable", "reset", "open"):
        await client.post(f"{API}/circuit-breakers/payments/{action}", headers=OP)
    first = (await client.get(f"{API}/audit?limit=2", headers=VIEW)).json()
    assert [e["action"] for e in first["entries"]] == [
        "circuit_breaker.open",
        "circuit_breaker.reset",
    ]
    second = (
        await client.get(
            f"{API}/audit", params={"limit": 5, "before": first["next_before"]}, headers=VIEW
        )
    ).json()
    assert len(second["entries"]) == 3
    assert second["next_before"] is None
    assert [e["id"] for e in second["entries"]] == [3, 2, 1]
    for query in ("limit=0", "limit=501", "limit=x", "before=-1"):
        response = await client.get(f"{API}/audit?{query}", headers=VIEW)
        assert response.status_code == 400, query


async def test_recent_events_newest_first(client: httpx.AsyncClient, registry: Registry) -> None:
    """GET events lists recent events newest first; after= returns only newer ones."""
    registry.breaker("db").trip()
    registry.breaker("db").reset()
    events = (await client.get(f"{API}/events", headers=VIEW)).json()["events"]
    assert [(e["kind"], e["new"]) for e in events[:2]] == [
        ("breaker.state_changed", "closed"),
        ("breaker.state_changed", "forced_open"),
    ]
    newer = (await client.get(f"{API}/events?after={events[1]['seq']}", headers=VIEW)).json()
    assert [e["seq"] for e in newer["events"]] == [events[0]["seq"]]
    one = (await client.get(f"{API}/events?limit=1", headers=VIEW)).json()["events"]
    assert len(one) == 1


async def test_audit_write_failure_is_a_500_saying_so(
    app: Starlette, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the audit log cannot be written the answer is a 500 saying the action was applied."""

    def broken(*args: object, **kwargs: object) -> None:
        raise StoreError("state store x: disk I/O error")

    monkeypatch.setattr(app.state.ops.audit, "append", broken)
    monkeypatch.setattr(app.state.ops.audit, "page", broken)
    response = await client.post(f"{API}/circuit-breakers/db/open", headers=OP)
    assert response.status_code == 500
    assert response.json()["error"] == "audit_failed"
    assert (await client.get(f"{API}/audit", headers=OP)).status_code == 500


async def test_unknown_paths_and_methods_are_json_errors(client: httpx.AsyncClient) -> None:
    """404 and 405 come as JSON errors; 405 keeps its Allow header."""
    missing = await client.get("/admin/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong = await client.delete("/health/live")
    assert wrong.status_code == 405
    assert set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD"}
    assert wrong.json()["error"] == "method_not_allowed"


async def test_lifespan_starts_checks_and_close_releases_everything(
    make_app: Callable[..., Starlette], registry: Registry
) -> None:
    """Startup starts the checks; shutdown stops event capture and closes the store; the
    lifespan can run again (test clients start and stop it more than once)."""
    app = make_app()
    ctx = app.state.ops
    async with app.router.lifespan_context(app):
        registry.breaker("db").trip()
        assert len(ctx.events.recent()) == 1
        ctx.store.put("ns", "k", 1)
    assert ctx.store._conn is None
    registry.breaker("db").reset()
    assert len(ctx.events.recent()) == 1
    async with app.router.lifespan_context(app):
        registry.breaker("db").trip()
        assert len(ctx.events.recent()) == 2
        assert ctx.health.checks()[0].name == "process"


async def test_metrics_are_served_to_viewers_when_telemetry_exists(
    client: httpx.AsyncClient, registry: Registry
) -> None:
    """With buttress.telemetry present, /metrics serves its exposition to token holders."""
    telemetry = pytest.importorskip("buttress.telemetry")
    registry.breaker("db").trip()
    response = await client.get("/metrics", headers=VIEW)
    assert response.status_code == 200
    assert response.headers["content-type"] == telemetry.CONTENT_TYPE
    assert 'buttress_circuit_breaker_state{name="db",state="forced_open"} 1' in response.text
    assert (await client.get("/metrics")).status_code == 401


async def test_state_file_appears_with_the_first_audit_entry(
    make_app: Callable[..., Starlette], tmp_path: Path
) -> None:
    """Creating the app and reading health write nothing; the first mutation creates the WAL db."""
    state_dir = tmp_path / "state"
    app = make_app(state_dir=state_dir)
    async with client_for(app) as client:
        await client.get("/health/live")
        assert not state_dir.exists()
        await client.post(f"{API}/circuit-breakers/db/open", headers=OP)
    assert (state_dir / "buttress.db").is_file()
    assert app.state.ops.store.query("PRAGMA journal_mode") == [("wal",)]
