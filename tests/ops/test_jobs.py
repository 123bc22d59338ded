"""The ops app's scheduled jobs: the standard three, their endpoints, stored runs, alerts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.applications import Starlette

from buttress import Registry
from buttress.events import HealthAlert
from buttress.health import CallableSink, HealthMonitor, HealthRegistry
from buttress.ops import OpsContext, StateStore
from buttress.ops._jobs import JOB_NAMES, OPEN_TOO_LONG, REPORTS, JobHistory
from buttress.ops.scheduler import JobRun, Scheduler
from buttress.testing import ManualClock, RecordingListener

from .conftest import OP, VIEW, client_for

API = "/admin/reliability"


async def test_standard_jobs_are_listed(make_app: Callable[..., Starlette]) -> None:
    """GET jobs lists the health, breaker and report jobs with their intervals, for viewers."""
    app = make_app(scheduler=True)
    async with client_for(app) as client:
        assert (await client.get(f"{API}/jobs")).status_code == 401
        body = (await client.get(f"{API}/jobs", headers=VIEW)).json()
    jobs = {job["name"]: job for job in body["jobs"]}
    assert sorted(jobs) == sorted(JOB_NAMES)
    assert jobs["health-monitor"]["interval"] == 60.0
    assert jobs["breaker-monitor"]["interval"] == 120.0
    assert jobs["reliability-report"]["interval"] == 3600.0
    assert jobs["health-monitor"]["last"] is None
    assert app.state.ops.scheduler is not None


async def test_no_scheduler_means_no_jobs(make_app: Callable[..., Starlette]) -> None:
    """With scheduler=None the list is empty and running a job is a 404."""
    async with client_for(make_app(scheduler=None)) as client:
        assert (await client.get(f"{API}/jobs", headers=VIEW)).json() == {"jobs": []}
        missing = await client.post(f"{API}/jobs/health-monitor/run", headers=OP)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


async def test_run_now_is_audited_and_stored(make_app: Callable[..., Starlette]) -> None:
    """POST run (operator) runs the job, answers with the run, audits it and stores it."""
    app = make_app(scheduler=True)
    async with client_for(app) as client:
        assert (
            await client.post(f"{API}/jobs/health-monitor/run", headers=VIEW)
        ).status_code == 403
        response = await client.post(
            f"{API}/jobs/health-monitor/run", headers=OP, json={"reason": "check now"}
        )
        assert response.status_code == 200
        body = response.json()
        audit = (await client.get(f"{API}/audit", headers=VIEW)).json()["entries"][0]
        runs = (await client.get(f"{API}/jobs/health-monitor/runs", headers=VIEW)).json()
        listed = (await client.get(f"{API}/jobs", headers=VIEW)).json()["jobs"]
        unknown = await client.get(f"{API}/jobs/nope/runs", headers=VIEW)
    assert body["run"]["outcome"] == "ok"
    assert body["job"]["runs"] == 1
    assert (audit["action"], audit["target"], audit["reason"]) == (
        "job.run",
        "health-monitor",
        "check now",
    )
    assert audit["after"]["outcome"] == "ok"
    assert [run["outcome"] for run in runs["runs"]] == ["ok"]
    assert runs["next_before"] is None
    health = next(job for job in listed if job["name"] == "health-monitor")
    assert health["last"]["outcome"] == "ok"
    assert unknown.status_code == 404


async def test_failing_job_is_an_error_run(make_app: Callable[..., Starlette]) -> None:
    """A job added by a later capability that raises shows as an error run, its secret masked."""
    app = make_app(scheduler=True)
    ctx: OpsContext = app.state.ops
    assert ctx.scheduler is not None

    def cleanup() -> None:
        raise RuntimeError("cannot reach redis://:hunter2@cache:6379/0")

    ctx.scheduler.add("cleanup", cleanup, interval=3600)
    async with client_for(app) as client:
        body = (await client.post(f"{API}/jobs/cleanup/run", headers=OP)).json()
    assert body["run"]["outcome"] == "error"
    assert "hunter2" not in body["run"]["error"]
    assert body["job"]["failures"] == 1


async def test_slow_run_answers_202(
    make_app: Callable[..., Starlette], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run still going after RUN_WAIT answers 202 with no run; it finishes in the background."""
    monkeypatch.setattr("buttress.ops._routes_jobs.RUN_WAIT", 0.01)
    app = make_app(scheduler=True)
    ctx: OpsContext = app.state.ops
    assert ctx.scheduler is not None
    gate = asyncio.Event()
    ctx.scheduler.add("backup", gate.wait, interval=3600)
    async with client_for(app) as client:
        response = await client.post(f"{API}/jobs/backup/run", headers=OP)
    assert response.status_code == 202
    assert response.json()["run"] is None
    assert response.json()["job"]["running"] is True
    gate.set()
    await ctx.scheduler.stop()


async def test_health_job_counts_monitor_runs_for_availability(
    make_app: Callable[..., Starlette], clock: ManualClock
) -> None:
    """Each health-monitor run counts: a check failing one run in four is 75% available."""
    health = HealthRegistry(clock=clock)
    for name in [c.name for c in health.checks()]:
        health.remove(name)
    outcomes = iter([True, False, True, True])

    async def api() -> bool:
        return next(outcomes)

    health.add(api)
    app = make_app(health=health, scheduler=True)
    ctx: OpsContext = app.state.ops
    assert ctx.scheduler is not None
    for _ in range(4):
        await ctx.scheduler.run("health-monitor")
        clock.advance(60)
    report = await ctx.reliability_report()
    assert report["summary"]["availability_from"] == "monitor runs"
    (check,) = report["checks"]
    assert (check["samples"], check["passes"], check["failures"]) == (4, 3, 1)
    assert check["availability"] == 0.75


async def test_health_job_alerts_the_monitor_sinks(
    make_app: Callable[..., Starlette], health: HealthRegistry, clock: ManualClock
) -> None:
    """The health job ticks the given monitor: a failing check alerts its sinks."""
    alerts: list[HealthAlert] = []
    failing = {"now": False}

    async def queue() -> bool:
        return not failing["now"]

    health.add(queue)
    monitor = HealthMonitor(health, sinks=[CallableSink(alerts.append)], cooldown=0)
    app = make_app(scheduler=True, monitor=monitor)
    scheduler = app.state.ops.scheduler
    await scheduler.run("health-monitor")
    failing["now"] = True
    clock.advance(60)
    await scheduler.run("health-monitor")
    assert [(a.source, a.old, a.new) for a in alerts] == [("queue", "pass", "fail")]


async def test_breaker_job_stores_samples_and_alerts_once(
    make_app: Callable[..., Starlette], registry: Registry, clock: ManualClock
) -> None:
    """A breaker refusing calls past the threshold alerts once, then once more when it closes;
    every run stores each breaker's snapshot."""
    sunk: list[HealthAlert] = []
    monitor = HealthMonitor(HealthRegistry(clock=clock), sinks=[CallableSink(sunk.append)])
    app = make_app(scheduler=True, monitor=monitor)
    ctx: OpsContext = app.state.ops
    scheduler = ctx.scheduler
    assert scheduler is not None
    with RecordingListener() as seen:
        registry.breaker("db").trip()
        clock.advance(OPEN_TOO_LONG - 1)
        await scheduler.run("breaker-monitor")
        assert seen.of(HealthAlert) == []
        clock.advance(2)
        await scheduler.run("breaker-monitor")
        await scheduler.run("breaker-monitor")
        registry.breaker("db").reset()
        await scheduler.run("breaker-monitor")
    alerts = [(a.source, a.old, a.new) for a in seen.of(HealthAlert)]
    assert alerts == [
        ("circuit_breaker:db", "pass", "fail"),
        ("circuit_breaker:db", "fail", "pass"),
    ]
    assert "forced_open" in seen.of(HealthAlert)[0].output
    assert [a.source for a in sunk] == ["circuit_breaker:db"] * 2
    rows = ctx.store.query("SELECT name, state FROM breaker_samples ORDER BY rowid")
    assert len(rows) == 8  # two breakers, four runs
    assert ("db", "forced_open") in rows
    assert rows[-2:] == [("db", "closed"), ("payments", "closed")]


async def test_report_job_stores_the_latest_report(make_app: Callable[..., Starlette]) -> None:
    """The reliability-report job puts the report in the state store."""
    app = make_app(scheduler=True)
    ctx: OpsContext = app.state.ops
    assert ctx.scheduler is not None
    assert (await ctx.scheduler.run("reliability-report")).outcome == "ok"
    stored = ctx.store.get(REPORTS, "reliability")
    assert {b["name"] for b in stored["breakers"]} == {"db", "payments"}


async def test_given_scheduler_keeps_its_jobs(make_app: Callable[..., Starlette]) -> None:
    """A Scheduler passed in becomes ctx.scheduler; a job name it already has is left alone."""
    scheduler = Scheduler()
    mine = scheduler.add("health-monitor", lambda: None, interval=5)
    app = make_app(scheduler=scheduler)
    assert app.state.ops.scheduler is scheduler
    assert scheduler.get("health-monitor") is mine
    assert {job.name for job in scheduler.jobs()} == set(JOB_NAMES)


async def test_lifespan_starts_jobs_and_restores_last_runs(
    tmp_path: Path, registry: Registry
) -> None:
    """The lifespan starts and stops the jobs; a restarted app shows each job's last stored run."""
    from buttress.ops import create_app

    health = HealthRegistry()

    def make() -> Starlette:
        return create_app(registry, health=health, state_dir=tmp_path, scheduler=True)

    first = make()
    async with first.router.lifespan_context(first):
        scheduler = first.state.ops.scheduler
        await asyncio.sleep(0)  # let the job loops start
        assert all(job.next_run is not None for job in scheduler.jobs())
        run = await scheduler.run("reliability-report")
    assert all(job.running is False for job in scheduler.jobs())
    second = make()
    async with second.router.lifespan_context(second):
        restored = second.state.ops.scheduler.get("reliability-report")
        assert restored.last == run
        assert restored.runs == 0


def test_history_keeps_the_newest_runs() -> None:
    """JobHistory keeps at most `keep` runs per job, newest first, and pages with before."""
    store = StateStore()
    history = JobHistory(store, keep=3)
    for index in range(5):
        history.append(JobRun("a", float(index), 0.1, "ok"))
    history.append(JobRun("b", 9.0, 0.1, "skipped"))
    runs = history.page("a")
    assert [run["started"] for run in runs] == [4.0, 3.0, 2.0]
    assert [run["started"] for run in history.page("a", before=runs[0]["id"])] == [3.0, 2.0]
    assert history.last("b") is None
    last = history.last("a")
    assert last is not None
    assert last.started == 4.0
    store.close()


async def test_scheduler_spawn_and_run_listeners() -> None:
    """spawn() runs a job in its own task; every run listener sees the run."""
    seen: list[JobRun] = []
    also: list[str] = []
    scheduler = Scheduler(clock=ManualClock(), on_run=seen.append)
    scheduler.add_run_listener(lambda run: also.append(run.outcome))
    scheduler.add("a", lambda: None, interval=1)
    run = await scheduler.spawn("a")
    assert seen == [run]
    assert also == ["ok"]
    with pytest.raises(KeyError):
        scheduler.spawn("missing")
