"""``install`` and ``beat_schedule``: the maintenance tasks, their schedule and their results
(run eagerly: no broker needed)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery.app.base import Celery

from buttress.backup import BackupManager, Files
from buttress.celery import INTERVALS, JOBS, CeleryIntegration, beat_schedule, install
from buttress.config import load_config
from buttress.dlq import DeadLetterQueue, Status
from buttress.errors import BackupError, ConfigError
from buttress.health import HealthMonitor, HealthRegistry
from buttress.ops import StateStore
from buttress.registry import Registry
from buttress.testing import ManualClock


@pytest.fixture
def installed(eager_app: Celery, tmp_path: Path) -> Iterator[Any]:
    """``make(**options)`` installs buttress on the eager app (state in ``tmp_path``)."""
    made: list[CeleryIntegration] = []

    def make(**options: Any) -> CeleryIntegration:
        options.setdefault("state_dir", tmp_path / "state")
        integration = install(eager_app, **options)
        made.append(integration)
        return integration

    yield make
    for integration in made:
        integration.close()


def run(app: Celery, job: str) -> Any:
    """Run the maintenance task of ``job`` through Celery (eagerly) and return its value."""
    return app.tasks[f"buttress.{job}"].apply().get(propagate=True)


def test_beat_schedule_has_every_job_at_the_ops_scheduler_intervals() -> None:
    """Every job gets an entry; intervals are the ops scheduler's and runs expire after one."""
    entries = beat_schedule()
    assert sorted(entries) == sorted(f"buttress.{job}" for job in JOBS)
    seconds = {name.removeprefix("buttress."): entry["schedule"] for name, entry in entries.items()}
    assert seconds["health-monitor"] == 60.0
    assert seconds["breaker-monitor"] == 120.0
    assert seconds["reliability-report"] == 3600.0
    assert seconds["dlq-process"] == 300.0
    assert seconds["cleanup"] == 86400.0
    assert seconds == dict(INTERVALS)
    entry = entries["buttress.dlq-process"]
    assert entry["task"] == "buttress.dlq-process"
    assert entry["options"] == {"expires": 300.0}


def test_beat_schedule_takes_jobs_prefix_and_intervals() -> None:
    """A chosen job, prefix and interval (a timedelta) give just that entry."""
    entries = beat_schedule(["cleanup"], prefix="ops", intervals={"cleanup": timedelta(hours=6)})
    assert entries == {
        "ops.cleanup": {"task": "ops.cleanup", "schedule": 21600.0, "options": {"expires": 21600.0}}
    }


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"jobs": ["vacuum"]}, "jobs"),
        ({"jobs": ["cleanup", "cleanup"]}, "jobs"),
        ({"prefix": ""}, "prefix"),
        ({"prefix": "a b"}, "prefix"),
        ({"intervals": {"cleanup": 0}}, "intervals.cleanup"),
        ({"intervals": {"vacuum": 5}}, "jobs"),
    ],
)
def test_beat_schedule_refuses_bad_input(options: dict[str, Any], field: str) -> None:
    """Unknown or repeated jobs, a bad prefix and a non-positive interval raise ConfigError."""
    with pytest.raises(ConfigError) as caught:
        beat_schedule(**options)
    assert caught.value.field == field


def test_install_registers_the_tasks_and_merges_the_beat_schedule(
    eager_app: Celery, installed: Any
) -> None:
    """Each job is a task ``buttress.<job>``; the user's beat entries stay, theirs win."""
    mine = {"task": "shop.report", "schedule": 5.0}
    eager_app.conf.beat_schedule = {"shop.report": mine, "buttress.cleanup": {"task": "x"}}
    integration = installed()
    assert set(integration.tasks) == set(JOBS)
    for job in JOBS:
        assert f"buttress.{job}" in eager_app.tasks
    schedule = eager_app.conf.beat_schedule
    assert schedule["shop.report"] == mine
    assert schedule["buttress.cleanup"] == {"task": "x"}
    assert schedule["buttress.breaker-monitor"]["schedule"] == 120.0


def test_install_with_chosen_jobs_and_no_schedule(eager_app: Celery, installed: Any) -> None:
    """``jobs=`` limits the tasks; ``schedule=False`` leaves the beat schedule alone."""
    integration = installed(jobs=["cleanup", "dlq-process"], schedule=False, prefix="ops")
    assert sorted(integration.tasks) == ["cleanup", "dlq-process"]
    assert "ops.cleanup" in eager_app.tasks
    assert "buttress.cleanup" not in eager_app.tasks
    assert eager_app.conf.beat_schedule == {}
    assert sorted(integration.beat_schedule()) == ["ops.cleanup", "ops.dlq-process"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"dlq": 42}, "dlq"),
        ({"backups": "daily"}, "backups"),
        ({"jobs": ["health"]}, "jobs"),
        ({"replay_wait": 0}, "replay_wait"),
        ({"prefix": ""}, "prefix"),
        ({"config": {"profile": "production"}}, "config"),
        ({"temp_root": 5}, "temp_root"),
    ],
)
def test_install_refuses_bad_input(
    eager_app: Celery, tmp_path: Path, options: dict[str, Any], field: str
) -> None:
    """Bad options raise ConfigError naming the field, and nothing is installed."""
    with pytest.raises(ConfigError) as caught:
        install(eager_app, state_dir=tmp_path, **options)
    assert caught.value.field == field
    assert not any(name.startswith("buttress.") for name in eager_app.tasks)


def test_install_refuses_a_non_celery_app_and_a_second_install(installed: Any) -> None:
    """Only a Celery app, and only once per app."""
    with pytest.raises(ConfigError) as caught:
        install(object())
    assert caught.value.field == "app"
    installed()
    with pytest.raises(ConfigError, match="already has buttress installed"):
        installed()


def test_install_takes_registry_health_and_monitor_from_a_config(installed: Any) -> None:
    """A loaded configuration gives the registry and the health registry; a given monitor's
    interval becomes the health job's beat interval."""
    config = load_config(environ={})
    monitor = HealthMonitor(config.health, interval=30.0)
    integration = installed(config=config, monitor=monitor)
    assert integration.registry is config.registry
    assert integration.health is config.health
    assert integration.beat_schedule()["buttress.health-monitor"]["schedule"] == 30.0


def test_health_monitor_task_returns_the_report_and_records_the_run(
    eager_app: Celery, installed: Any, tmp_path: Path
) -> None:
    """The health job ticks the monitor: its result is the health report, and the run lands
    in the job history the ops server reads."""
    health = HealthRegistry()
    health.add(lambda: True, name="answers")
    installed(health=health)
    value = run(eager_app, "health-monitor")
    assert value["job"] == "health-monitor"
    assert value["outcome"] == "ok"
    assert value["result"]["status"] == "pass"
    assert "answers:status" in value["result"]["checks"]
    rows = StateStore.in_directory(tmp_path / "state").query("SELECT job, outcome FROM job_runs")
    assert rows == [("health-monitor", "ok")]


def test_breaker_monitor_and_report_tasks_see_the_registry(
    eager_app: Celery, installed: Any
) -> None:
    """The breaker job reports each breaker's state; the report job returns the report."""
    registry = Registry()
    registry.breaker("payments").trip()
    registry.breaker("search")
    installed(registry=registry)
    breakers = run(eager_app, "breaker-monitor")["result"]
    assert breakers["breakers"] == {"payments": "forced_open", "search": "closed"}
    report = run(eager_app, "reliability-report")["result"]
    assert [b["name"] for b in report["breakers"]] == ["payments", "search"]


@pytest.mark.parametrize("job", ["backup", "drill", "dlq-process"])
def test_a_job_without_what_it_needs_does_nothing_and_says_so(
    eager_app: Celery, installed: Any, job: str
) -> None:
    """No backup manager or no DLQ: the run succeeds and its result says why nothing ran."""
    installed()
    value = run(eager_app, job)
    assert value["outcome"] == "ok"
    assert value["result"]["note"].startswith("nothing to do: no ")


def test_cleanup_removes_old_dead_letters_and_leftover_temp_files(
    eager_app: Celery, installed: Any, tmp_path: Path
) -> None:
    """Cleanup deletes resolved records past the DLQ's retention and stale temporary paths."""
    clock = ManualClock(wall=time.time())
    dlq = DeadLetterQueue(f"sqlite:///{tmp_path / 'dlq.db'}", clock=clock)
    gone = dlq.add({"n": 1}, error=ConnectionError("down"), queue="mail")
    kept = dlq.add({"n": 2}, error=ConnectionError("down"), queue="mail")
    dlq.discard(gone, "sent by hand")
    clock.advance(8 * 86400)
    root = tmp_path / "temp"
    old = root / f"bt-{os.getpid()}-{int((clock.time() - 3 * 86400) * 1000)}-job-x1"
    old.mkdir(parents=True)
    fresh = root / f"bt-{os.getpid()}-{int(clock.time() * 1000)}-job-x2"
    fresh.mkdir()
    installed(dlq=dlq, temp_root=root, clock=clock)
    result = run(eager_app, "cleanup")["result"]
    assert result["dead_letters_deleted"] == 1
    assert result["temp_removed"] == [str(old)]
    assert dlq.get(gone) is None
    assert dlq.get(kept) is not None
    assert fresh.exists()
    dlq.close()


def test_backup_and_drill_tasks_run_every_configured_source(
    eager_app: Celery, installed: Any, tmp_path: Path
) -> None:
    """The backup job makes a full backup of each source; the drill job restores it."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("hello")
    manager = BackupManager(tmp_path / "catalog.db", tmp_path / "artifacts")
    manager.configure("site", Files(site), compression="gzip")
    installed(backups=manager)
    made = run(eager_app, "backup")["result"]["backups"]
    assert made["site"]["status"] == "completed"
    assert [b.id for b in manager.list("site")] == [made["site"]["id"]]
    drills = run(eager_app, "drill")["result"]["drills"]
    assert drills["site"]["ok"] is True
    assert drills["site"]["backup_id"] == made["site"]["id"]


def test_a_failing_job_fails_its_task_and_is_recorded(
    eager_app: Celery, installed: Any, tmp_path: Path
) -> None:
    """A backup that fails raises from the task, and the run is kept as an error."""
    site = tmp_path / "site"
    site.mkdir()
    manager = BackupManager(tmp_path / "catalog.db", tmp_path / "artifacts")
    manager.configure("site", Files(site), compression="gzip")
    site.rmdir()
    installed(backups=manager)
    result = eager_app.tasks["buttress.backup"].apply()
    assert result.failed()
    assert isinstance(result.result, BackupError)
    assert "site" in str(result.result)
    rows = StateStore.in_directory(tmp_path / "state").query("SELECT job, outcome FROM job_runs")
    assert rows == [("backup", "error")]


def test_dlq_process_task_replays_dead_lettered_tasks(
    eager_app: Celery, installed: Any, tmp_path: Path
) -> None:
    """The DLQ job registers a replay handler for the app's resilient tasks and re-runs the
    due dead letters through Celery."""
    from buttress.celery import ResilientTask

    seen: list[int] = []

    @eager_app.task(base=ResilientTask, name="shop.charge", shared=False)
    def charge(order: int) -> int:
        seen.append(order)
        return order

    dlq = DeadLetterQueue(f"sqlite:///{tmp_path / 'dlq.db'}")
    id = dlq.add({"args": [7], "kwargs": {}}, error=ConnectionError("down"), queue="shop.charge")
    dlq.retry(id)
    installed(dlq=dlq)
    result = run(eager_app, "dlq-process")["result"]
    assert result["resolved"] == 1
    assert seen == [7]
    letter = dlq.get(id)
    assert letter is not None
    assert letter.status is Status.RESOLVED
    assert charge.name in dlq.handlers
    dlq.close()


def test_a_forked_worker_process_builds_its_own_jobs(installed: Any) -> None:
    """A prefork child does not reuse its parent's event loop thread (which does not exist
    after the fork): it builds its own and runs the job."""
    integration = installed()
    assert integration.run("breaker-monitor")["outcome"] == "ok"  # the parent's loop runs
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, never return into pytest
        try:
            outcome = integration.run("breaker-monitor")["outcome"]
            os.write(write, outcome.encode())
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 10
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the child hung running the job")
        time.sleep(0.02)
    with os.fdopen(read) as pipe:
        assert pipe.read() == "ok"
