"""The backup metrics in /metrics: read from the catalog at scrape time, per backup name, and
the exposition passes promtool."""

from __future__ import annotations

from pathlib import Path

from buttress import Registry
from buttress.backup import BackupManager, BackupPlan, Files, ScheduledDrill
from buttress.telemetry import ButtressCollector, render
from buttress.testing import ManualClock
from tests.telemetry._helpers import families, run_promtool, samples, value

from .conftest import make_tree


def _plan(tmp_path: Path, clock: ManualClock) -> BackupPlan:
    manager = BackupManager(tmp_path / "catalog.db", tmp_path / "store", clock=clock)
    manager.configure("site", Files(make_tree(tmp_path / "src")))
    manager.configure("empty", Files(tmp_path / "missing"))
    return BackupPlan(manager, drills=[ScheduledDrill("site", files=["nope.txt"])])


def test_metrics_follow_the_catalog(tmp_path: Path, clock: ManualClock) -> None:
    """Last success, duration and size are the newest completed backup's; the drill metrics
    are the newest passed drill's (a later failed drill does not replace them); a name with
    no completed backup has no rows; the exposition passes promtool."""
    registry = Registry(clock=clock)
    plan = _plan(tmp_path, clock).attach(registry)
    manager = plan.manager
    manager.create("site")
    clock.advance(3600)
    newest = manager.create("site", "incremental")
    passed = manager.drill("site")
    clock.advance(60)
    failed = plan.run_drill("site")  # its file check fails
    assert passed.ok
    assert not failed.ok
    exposition = render(registry)
    found = samples(exposition)
    assert value(found, "buttress_backup_last_success_timestamp_seconds", name="site") == (
        newest.finished_at
    )
    assert value(found, "buttress_backup_size_bytes", name="site") == newest.size
    assert value(found, "buttress_backup_duration_seconds", name="site") == newest.duration
    assert value(found, "buttress_drill_recovery_seconds", name="site") == passed.rto_seconds
    assert value(found, "buttress_drill_recovery_point_seconds", name="site") == (
        passed.rpo_seconds
    )
    assert value(found, "buttress_drill_last_success_timestamp_seconds", name="site") == (
        passed.finished_at
    )
    assert not [key for key in found if ("name", "empty") in key[1]]
    kinds = families(exposition)
    assert kinds["buttress_backup_size_bytes"] == ("gauge", frozenset({"name"}))
    run_promtool("check", "metrics", stdin=exposition)


def test_the_collector_reports_the_same(tmp_path: Path, clock: ManualClock) -> None:
    """prometheus_client's collector gives the same backup samples as the text writer."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = Registry(clock=clock)
    plan = _plan(tmp_path, clock).attach(registry)
    plan.manager.create("site")
    collector = ButtressCollector(registry)
    target = CollectorRegistry()
    collector.register(target)
    try:
        via_client = samples(generate_latest(target))
    finally:
        collector.close()
    name = "buttress_backup_last_success_timestamp_seconds"
    assert value(via_client, name, name="site") == value(
        samples(render(registry)), name, name="site"
    )


def test_an_unreadable_catalog_leaves_the_rows_out(tmp_path: Path, clock: ManualClock) -> None:
    """A catalog that cannot be opened gives no backup rows, and the scrape still works."""
    registry = Registry(clock=clock)
    (tmp_path / "blocked").write_text("a file where the catalog's folder should be")
    manager = BackupManager(tmp_path / "blocked" / "catalog.db", tmp_path / "store", clock=clock)
    BackupPlan(manager).attach(registry)
    registry.breaker("db")
    found = samples(render(registry))
    assert not [key for key in found if key[0].startswith("buttress_backup")]
    assert value(found, "buttress_circuit_breaker_state", name="db", state="closed") == 1
