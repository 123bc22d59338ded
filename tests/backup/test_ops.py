"""Backups in the ops server: the admin API (list, show, verify, drill; reads guarded,
changes audited), the scheduled jobs and their alerts, and no routes without a plan."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from buttress import Registry
from buttress.backup import (
    BackupManager,
    BackupPlan,
    Files,
    ScheduledBackup,
    ScheduledDrill,
    VerifyResult,
)
from buttress.backup._manager import artifact_key
from buttress.backup._schedule import check_interval
from buttress.events import HealthAlert
from buttress.health import CallableSink, HealthMonitor, HealthRegistry
from buttress.ops import _routes_backups as routes
from buttress.ops import create_app
from buttress.ops.scheduler import Scheduler
from buttress.testing import ManualClock
from tests.ops.conftest import OP, TOKENS, VIEW, client_for

from .conftest import make_tree

DAY = 86400.0
API = "/admin/reliability/backups"


@pytest.fixture
def plan(tmp_path: Path, clock: ManualClock) -> BackupPlan:
    """A plan for ``site``: incrementals daily with a weekly full, and a weekly drill."""
    manager = BackupManager(tmp_path / "catalog.db", tmp_path / "store", clock=clock)
    manager.configure("site", Files(make_tree(tmp_path / "src")))
    return BackupPlan(
        manager,
        backups=[ScheduledBackup("site", every=DAY, kind="incremental", full_every=7 * DAY)],
        drills=[ScheduledDrill("site", every=7 * DAY, files=["docs/readme.txt"])],
    )


@pytest.fixture
def seen() -> list[HealthAlert]:
    """Alerts sent to the monitor's sink."""
    return []


@pytest.fixture
def make(plan: BackupPlan, clock: ManualClock, seen: list[HealthAlert]) -> Callable[..., Starlette]:
    """Build the app with ``plan`` attached (or not), the test tokens and a recording sink."""

    def build(attach: bool = True, **options: Any) -> Starlette:
        registry = Registry(clock=clock)
        if attach:
            plan.attach(registry)
        health = HealthRegistry(clock=clock)
        monitor = HealthMonitor(health, sinks=[CallableSink(seen.append)], clock=clock)
        options.setdefault("scheduler", None)
        return create_app(
            registry,
            health=health,
            tokens=TOKENS,
            state_dir=":memory:",
            clock=clock,
            monitor=monitor,
            **options,
        )

    return build


@pytest.fixture
async def client(make: Callable[..., Starlette]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with the plan."""
    app = make()
    async with client_for(app) as client:
        yield client
    app.state.ops.close()


async def test_list_shows_success_sizes_drill_and_schedules(
    client: httpx.AsyncClient, plan: BackupPlan, clock: ManualClock
) -> None:
    """GET /backups: per name the newest success, sizes over time as [time, bytes], the newest
    drill with RTO and RPO, and both schedules."""
    first = plan.run_backup("site")
    clock.advance(3600)
    second = plan.run_backup("site")
    clock.advance(60)
    drill = plan.run_drill("site")
    response = await client.get(API, headers=VIEW)
    assert response.status_code == 200
    (item,) = response.json()["backups"]
    assert item["name"] == "site"
    assert item["strategy"] == "files"
    assert item["last_success"]["id"] == second.id
    assert item["sizes"] == [[first.finished_at, first.size], [second.finished_at, second.size]]
    assert item["last_drill"]["ok"] is True
    assert item["last_drill"]["rto_seconds"] == drill.rto_seconds
    assert item["last_drill"]["rpo_seconds"] == drill.rpo_seconds
    assert item["schedule"]["kind"] == "incremental"
    assert item["drill_schedule"]["files"] == ["docs/readme.txt"]
    assert item["completed"] == 2
    assert response.json()["destination"].startswith("file://")
    limited = await client.get(f"{API}?points=1", headers=VIEW)
    assert limited.json()["backups"][0]["sizes"] == [[second.finished_at, second.size]]
    assert (await client.get(f"{API}?points=0", headers=VIEW)).status_code == 400


async def test_reads_need_a_token_and_changes_an_operator(
    client: httpx.AsyncClient, plan: BackupPlan
) -> None:
    """No token: 401 on reads; a viewer reads but gets 403 on verify and drill."""
    backup = plan.run_backup("site")
    assert (await client.get(API)).status_code == 401
    assert (await client.get(f"{API}/{backup.id}", headers=VIEW)).status_code == 200
    for path in (f"{API}/{backup.id}/verify", f"{API}/site/drill"):
        assert (await client.post(path, headers=VIEW)).status_code == 403


async def test_list_says_the_readers_role(make: Callable[..., Starlette]) -> None:
    """GET /backups names the reader's role (the dashboard shows its buttons to operators
    only): viewer, operator, and null for a public read without a token."""
    app = make(public_reads=True)
    async with client_for(app) as client:
        roles = [
            (await client.get(API, headers=headers)).json()["role"] for headers in (VIEW, OP, {})
        ]
    app.state.ops.close()
    assert roles == ["viewer", "operator", None]


async def test_show_gives_the_backup_and_its_chain(
    client: httpx.AsyncClient, plan: BackupPlan, clock: ManualClock
) -> None:
    """GET /backups/{id}: the record and its chain, full first; an unknown id is 404."""
    full = plan.run_backup("site")
    clock.advance(DAY)
    inc = plan.run_backup("site")
    body = (await client.get(f"{API}/{inc.id}", headers=VIEW)).json()
    assert body["backup"]["id"] == inc.id
    assert body["backup"]["kind"] == "incremental"
    assert body["chain"] == [full.id, inc.id]
    assert body["verification"] is None
    missing = await client.get(f"{API}/site-19700101T000000Z-000000", headers=VIEW)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


async def test_verify_is_audited_and_catches_a_flipped_byte(
    client: httpx.AsyncClient,
    plan: BackupPlan,
    tmp_path: Path,
    flip: Callable[[Path], None],
) -> None:
    """POST verify (deep) answers the result and is in the audit log; after a flipped byte
    it reports the damaged artifact; GET shows the last verification."""
    backup = plan.run_backup("site")
    url = f"{API}/{backup.id}/verify"
    good = await client.post(url, headers=OP, json={"deep": True, "reason": "weekly check"})
    assert good.status_code == 200
    assert good.json()["result"]["ok"] is True
    assert good.json()["result"]["deep"] is True
    audit = (await client.get("/admin/reliability/audit", headers=VIEW)).json()["entries"]
    assert audit[0]["action"] == "backup.verify"
    assert audit[0]["target"] == backup.id
    assert audit[0]["reason"] == "weekly check"
    flip(tmp_path / "store" / artifact_key(backup, "data.tar"))
    bad = (await client.post(url, headers=OP)).json()["result"]
    assert bad["ok"] is False
    assert [c["ok"] for c in bad["checks"] if c["name"].endswith("data.tar")] == [False]
    shown = (await client.get(f"{API}/{backup.id}", headers=VIEW)).json()
    assert shown["verification"]["ok"] is False
    assert (await client.post(url, headers=OP, json={"deep": "yes"})).status_code == 400
    assert (await client.post(url, headers=OP, json={"force": True})).status_code == 400
    unknown = f"{API}/site-19700101T000000Z-000000/verify"
    assert (await client.post(unknown, headers=OP)).status_code == 404


async def test_drill_runs_with_its_validation_and_is_kept(
    client: httpx.AsyncClient, plan: BackupPlan
) -> None:
    """POST /backups/site/drill restores into scratch with the configured file check, answers
    RTO and RPO, and the history lists it; an unknown name is 404."""
    plan.run_backup("site")
    response = await client.post(f"{API}/site/drill", headers=OP, json={"reason": "game day"})
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["ok"] is True
    assert result["rto_seconds"] is not None
    assert "file docs/readme.txt" in [c["name"] for c in result["checks"]]
    history = (await client.get(f"{API}/site/drills", headers=VIEW)).json()
    assert [d["id"] for d in history["drills"]] == [result["id"]]
    assert (await client.post(f"{API}/nope/drill", headers=OP)).status_code == 404
    assert (await client.get(f"{API}/nope/drills", headers=VIEW)).status_code == 404


async def test_slow_work_answers_202_then_409_while_it_runs(
    client: httpx.AsyncClient, plan: BackupPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Work still running after RUN_WAIT answers 202 with a null result; asking again while it
    runs is 409; its result then shows in GET /backups/{id}."""
    backup = plan.run_backup("site")
    release = threading.Event()
    real_verify = plan.manager.verify

    def slow_verify(backup_id: str, **options: Any) -> VerifyResult:
        release.wait(5)
        return real_verify(backup_id, **options)

    monkeypatch.setattr(plan.manager, "verify", slow_verify)
    monkeypatch.setattr(routes, "RUN_WAIT", 0.01)
    url = f"{API}/{backup.id}/verify"
    first = await client.post(url, headers=OP)
    assert first.status_code == 202
    assert first.json()["result"] is None
    assert (await client.post(url, headers=OP)).status_code == 409
    running = (await client.get(f"{API}/{backup.id}", headers=VIEW)).json()["verification"]
    assert running == {"running": True}
    release.set()
    for _ in range(200):  # poll in short steps until the thread is done
        shown = (await client.get(f"{API}/{backup.id}", headers=VIEW)).json()["verification"]
        if shown != {"running": True}:
            break
        await asyncio.sleep(0.01)
    assert shown["ok"] is True


async def test_no_plan_no_routes(make: Callable[..., Starlette]) -> None:
    """Without a plan attached the app has no backup routes and documents none."""
    app = make(attach=False)
    async with client_for(app) as client:
        assert (await client.get(API, headers=OP)).status_code == 404
        doc = (await client.get("/admin/openapi.json")).json()
    assert not [path for path in doc["paths"] if "/backups" in path]
    app.state.ops.close()


async def test_a_bare_manager_is_served_without_schedules(
    plan: BackupPlan, clock: ManualClock
) -> None:
    """A BackupManager attached instead of a plan gets the same routes, no schedules."""
    registry = Registry(clock=clock)
    registry.attach("backup", plan.manager, "default")
    plan.manager.create("site")
    app = create_app(registry, tokens=TOKENS, state_dir=":memory:", clock=clock, scheduler=None)
    async with client_for(app) as client:
        (item,) = (await client.get(API, headers=VIEW)).json()["backups"]
    app.state.ops.close()
    assert item["schedule"] is None
    assert item["completed"] == 1


async def test_scheduled_jobs_run_when_due_and_alert_on_failure(
    make: Callable[..., Starlette],
    plan: BackupPlan,
    clock: ManualClock,
    seen: list[HealthAlert],
    tmp_path: Path,
) -> None:
    """Startup adds backup:site and drill:site, checked every check_interval(every); a run
    makes a backup only when one is due; a failing backup is an error run and an alert, the
    next success a recovery alert; a failing drill too."""
    scheduler = Scheduler()  # real time: its own first runs would be an hour away
    app = make(scheduler=scheduler)
    async with app.router.lifespan_context(app):
        assert scheduler.get("backup:site").interval == check_interval(DAY)
        assert scheduler.get("drill:site").interval == check_interval(7 * DAY)
        assert (await scheduler.run("backup:site")).outcome == "ok"
        assert (await scheduler.run("backup:site")).outcome == "ok"  # not due: nothing made
        assert [b.kind for b in plan.manager.list("site")] == ["full"]
        (tmp_path / "src").rename(tmp_path / "moved")
        clock.advance(DAY)
        failed = await scheduler.run("backup:site")
        assert failed.outcome == "error"
        assert "not a directory" in failed.error
        assert [(a.source, a.new) for a in seen] == [("backup:site", "fail")]
        (tmp_path / "moved").rename(tmp_path / "src")
        clock.advance(check_interval(DAY))
        assert (await scheduler.run("backup:site")).outcome == "ok"
        assert [(a.source, a.new) for a in seen][-1] == ("backup:site", "pass")
        assert [b.status for b in plan.manager.list("site")][-1] == "completed"
        plan.drills["site"] = ScheduledDrill("site", every=7 * DAY, files=["missing.txt"])
        drill = await scheduler.run("drill:site")
        assert drill.outcome == "error"
        assert [(a.source, a.new) for a in seen][-1] == ("drill:site", "fail")
    app.state.ops.close()
