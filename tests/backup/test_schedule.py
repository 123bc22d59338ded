"""Scheduled backups and drills: slots aligned on the epoch, due once per slot from the
catalog, fulls every so often, retention after each backup, and options checked."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress.backup import (
    BackupManager,
    BackupPlan,
    Files,
    RetentionPolicy,
    ScheduledBackup,
    ScheduledDrill,
)
from buttress.backup._schedule import MAX_CHECK, _due, check_interval, slot_start
from buttress.errors import ConfigError
from buttress.testing import ManualClock

DAY = 86400.0


@given(
    every=st.floats(min_value=1.0, max_value=1e6),
    offset_share=st.floats(min_value=0.0, max_value=0.999),
    now=st.floats(min_value=0.0, max_value=4e9),
)
def test_slot_start_is_the_latest_boundary(every: float, offset_share: float, now: float) -> None:
    """The slot start is a boundary (offset + k * every), not after now, less than one slot
    before it."""
    offset = every * offset_share
    start = slot_start(now, every, offset)
    assert start <= now + 1e-6 * every
    assert now - start < every * (1 + 1e-9) + 1e-6
    k = (start - offset) / every
    assert abs(k - round(k)) < 1e-6


@given(
    every=st.sampled_from([60.0, 3600.0, DAY]),
    gaps=st.lists(st.floats(min_value=0.001, max_value=1.0), min_size=1, max_size=60),
)
def test_due_once_per_slot_whatever_the_check_times(every: float, gaps: list[float]) -> None:
    """Checking at any increasing times and running whenever due runs exactly once in each
    slot that had a check, and never twice in one slot."""
    now, last = 1_700_000_000.0, None
    runs: list[float] = []
    slots_checked: set[float] = set()
    for gap in gaps:
        now += gap * every
        slots_checked.add(slot_start(now, every))
        if _due(last, every, 0.0, now):
            runs.append(now)
            last = now
    run_slots = [slot_start(t, every) for t in runs]
    assert len(run_slots) == len(set(run_slots))
    assert set(run_slots) == slots_checked


def test_check_interval_is_a_quarter_at_most_an_hour() -> None:
    """Hourly schedules are checked every 15 minutes, daily ones hourly."""
    assert check_interval(3600) == 900
    assert check_interval(DAY) == MAX_CHECK == 3600


def _plan(tmp_path: Path, clock: ManualClock, **options: object) -> BackupPlan:
    tree = tmp_path / "src"
    tree.mkdir(exist_ok=True)
    (tree / "a.txt").write_text("a")
    manager = BackupManager(tmp_path / "catalog.db", tmp_path / "store", clock=clock)
    manager.configure("site", Files(tree))
    schedule = ScheduledBackup("site", **options)  # type: ignore[arg-type]
    return BackupPlan(manager, backups=[schedule], drills=[ScheduledDrill("site", every=7 * DAY)])


def test_a_backup_is_due_once_per_slot_and_after_a_restart(tmp_path: Path) -> None:
    """Due with no backup yet; not again in the same slot; due in the next slot; a new plan
    on the same catalog (a restarted server) agrees."""
    clock = ManualClock(wall=1_700_000_000.0 - 1_700_000_000.0 % DAY + 7200 + 60)
    plan = _plan(tmp_path, clock, every=DAY, offset=7200)
    assert plan.backup_due("site")
    plan.run_backup("site")
    clock.advance(3600)
    assert not plan.backup_due("site")
    restarted = _plan(tmp_path, clock, every=DAY, offset=7200)
    assert not restarted.backup_due("site")
    clock.advance(DAY - 3600)  # 02:01 the next day
    assert restarted.backup_due("site")


def test_a_failed_backup_is_tried_again_at_the_next_check(tmp_path: Path) -> None:
    """After a failed attempt the backup is due again one check interval later, not a slot."""
    clock = ManualClock(wall=1_700_000_000.0)
    plan = _plan(tmp_path, clock, every=DAY)
    source = tmp_path / "src"
    source.rename(tmp_path / "gone")
    with pytest.raises(Exception, match="not a directory"):
        plan.run_backup("site")
    assert not plan.backup_due("site")
    clock.advance(check_interval(DAY))
    assert plan.backup_due("site")


def test_incrementals_with_a_full_every_week(tmp_path: Path) -> None:
    """kind=incremental with full_every=7 days: a full first, incrementals after, a full
    again once the newest full is a week old (less one check interval)."""
    clock = ManualClock(wall=1_700_000_000.0)
    plan = _plan(tmp_path, clock, every=DAY, kind="incremental", full_every=timedelta(days=7))
    kinds = []
    for _ in range(9):
        kinds.append(plan.run_backup("site").kind)
        clock.advance(DAY)
    assert kinds == ["full"] + ["incremental"] * 6 + ["full", "incremental"]


def test_retention_prunes_after_each_backup(tmp_path: Path) -> None:
    """retention=last 2: after five backups two remain (keep_for protects nothing here)."""
    clock = ManualClock(wall=1_700_000_000.0)
    plan = _plan(tmp_path, clock, every=3600, retention=RetentionPolicy(last=2))
    for _ in range(5):
        plan.run_backup("site")
        clock.advance(3600)
    assert len(plan.manager.list("site")) == 2


def test_drill_due_and_run_with_its_validation(tmp_path: Path) -> None:
    """A drill is due with no history, runs its file checks, and is not due again that week."""
    clock = ManualClock(wall=1_700_000_000.0)
    plan = _plan(tmp_path, clock, every=DAY)
    plan.drills["site"] = ScheduledDrill("site", every=7 * DAY, files=["a.txt"])
    plan.run_backup("site")
    assert plan.drill_due("site")
    result = plan.run_drill("site")
    assert result.ok
    assert [c.name for c in result.checks][-1] == "file a.txt"
    clock.advance(3600)
    assert not plan.drill_due("site")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"name": "bad name"}, "name"),
        ({"name": "x", "every": 0}, "every"),
        ({"name": "x", "every": 60, "offset": 60}, "offset"),
        ({"name": "x", "kind": "weekly"}, "kind"),
        ({"name": "x", "full_every": -1}, "full_every"),
        ({"name": "x", "retention": {"last": 2}}, "retention"),
    ],
)
def test_bad_backup_schedules_name_the_field(options: dict[str, object], field: str) -> None:
    """Each bad option raises ConfigError naming it."""
    with pytest.raises(ConfigError) as caught:
        ScheduledBackup(**options)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_bad_drills_and_plans_name_the_field(tmp_path: Path) -> None:
    """A drill's queries must be a list of strings; a plan takes a manager and one schedule
    per name."""
    with pytest.raises(ConfigError, match="queries"):
        ScheduledDrill("x", queries="SELECT 1")
    with pytest.raises(ConfigError, match="manager"):
        BackupPlan("not a manager")  # type: ignore[arg-type]
    manager = BackupManager(tmp_path / "c.db", tmp_path / "s")
    twice = [ScheduledBackup("x"), ScheduledBackup("x")]
    with pytest.raises(ConfigError, match="backups"):
        BackupPlan(manager, backups=twice)
