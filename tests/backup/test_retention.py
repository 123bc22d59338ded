"""Retention: GFS rules as properties, chains never broken, and prune with --dry-run."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.backup import Backup, BackupManager, RetentionPolicy, plan_retention
from buttress.errors import ConfigError
from buttress.testing import ManualClock

from .conftest import set_mtime

DAY = 86_400.0
START = 1_700_000_000.0


@st.composite
def histories(draw: st.DrawFn) -> list[Backup]:
    """Backups of one or two names over about a year: fulls, incrementals, differentials,
    some failed, some running, some with keep_until."""
    out: list[Backup] = []
    t = START
    for name in draw(st.sampled_from([["a"], ["a", "b"]])):
        last_full: str | None = None
        last_any: str | None = None
        for i in range(draw(st.integers(0, 40))):
            t += draw(st.floats(60.0, 20 * DAY))
            status = draw(st.sampled_from(["completed"] * 8 + ["failed", "running"]))
            kind = draw(st.sampled_from(["full", "incremental", "differential"]))
            if last_full is None:
                kind = "full"
            parent = None if kind == "full" else (last_any if kind == "incremental" else last_full)
            keep = draw(st.one_of(st.none(), st.floats(t - 10 * DAY, t + 30 * DAY)))
            backup = Backup(
                id=f"{name}-{i:03d}",
                name=name,
                kind=kind,  # type: ignore[arg-type]
                strategy="files",
                status=status,  # type: ignore[arg-type]
                started_at=t,
                parent=parent,
                keep_until=keep,
            )
            out.append(backup)
            if status == "completed":
                last_any = backup.id
                if kind == "full":
                    last_full = backup.id
    return out


policies = st.one_of(
    st.none(),
    st.builds(
        RetentionPolicy,
        last=st.integers(0, 5),
        daily=st.integers(0, 7),
        weekly=st.integers(0, 5),
        monthly=st.integers(0, 12),
        yearly=st.integers(0, 3),
    ),
)
now_offsets = st.floats(0, 400 * DAY)


@settings(max_examples=200, deadline=None)
@given(backups=histories(), policy=policies, offset=now_offsets)
def test_plan_partitions_and_keeps_chains_whole(
    backups: list[Backup], policy: RetentionPolicy | None, offset: float
) -> None:
    """Every backup is kept or deleted, never both; whatever is kept keeps its whole chain."""
    now = START + offset
    plan = plan_retention(backups, policy, now)
    ids = {b.id for b in backups}
    assert set(plan.keep) | set(plan.delete) == ids
    assert not set(plan.keep) & set(plan.delete)
    by_id = {b.id: b for b in backups}
    for kept in plan.keep:
        parent = by_id[kept].parent
        while parent is not None:
            assert parent in plan.keep, f"{kept} needs {parent}, which would be deleted"
            parent = by_id[parent].parent


@settings(max_examples=200, deadline=None)
@given(backups=histories(), policy=policies, offset=now_offsets)
def test_safety_rules_hold(
    backups: list[Backup], policy: RetentionPolicy | None, offset: float
) -> None:
    """Running backups, the newest completed one per name and completed ones with an
    unexpired keep_until stay; failed ones go; deletions come newest first."""
    now = START + offset
    plan = plan_retention(backups, policy, now)
    for b in backups:
        unexpired = b.keep_until is not None and b.keep_until > now
        if b.status == "running" or (b.status == "completed" and unexpired):
            assert b.id in plan.keep
        if b.status == "failed":
            assert b.id in plan.delete
    for name in {b.name for b in backups}:
        done = [b for b in backups if b.name == name and b.status == "completed"]
        if done:
            assert max(done, key=lambda b: b.started_at).id in plan.keep
    times = [next(b.started_at for b in backups if b.id == i) for i in plan.delete]
    assert times == sorted(times, reverse=True)


@settings(max_examples=200, deadline=None)
@given(
    backups=histories(),
    policy=st.builds(
        RetentionPolicy,
        last=st.integers(0, 5),
        daily=st.integers(0, 7),
        weekly=st.integers(0, 5),
        monthly=st.integers(0, 12),
    ),
    offset=now_offsets,
)
def test_gfs_keeps_the_newest_of_each_recent_period(
    backups: list[Backup], policy: RetentionPolicy, offset: float
) -> None:
    """The last N completed, and the newest of each of the N most recent days, weeks and
    months that have a completed backup, are all kept."""
    plan = plan_retention(backups, policy, START + offset)
    for name in {b.name for b in backups}:
        done = sorted(
            (b for b in backups if b.name == name and b.status == "completed"),
            key=lambda b: b.started_at,
            reverse=True,
        )
        for b in done[: policy.last]:
            assert "last" in plan.keep[b.id]
        for count, bucket in (
            (policy.daily, lambda d: d.date()),
            (policy.weekly, lambda d: d.isocalendar()[:2]),
            (policy.monthly, lambda d: (d.year, d.month)),
        ):
            newest: dict[object, Backup] = {}
            for b in done:
                newest.setdefault(bucket(datetime.fromtimestamp(b.started_at, UTC)), b)
            recent = sorted(newest.values(), key=lambda b: b.started_at, reverse=True)[:count]
            for b in recent:
                assert b.id in plan.keep


@settings(max_examples=150, deadline=None)
@given(backups=histories(), policy=policies, offset=now_offsets)
def test_pruning_twice_deletes_nothing_more(
    backups: list[Backup], policy: RetentionPolicy | None, offset: float
) -> None:
    """Planning again over what was kept, at the same time, deletes nothing: prune is idempotent."""
    now = START + offset
    plan = plan_retention(backups, policy, now)
    kept = [b for b in backups if b.id in plan.keep]
    assert plan_retention(kept, policy, now).delete == ()


def test_negative_counts_are_config_errors() -> None:
    """A negative count names its field."""
    with pytest.raises(ConfigError, match="daily"):
        RetentionPolicy(daily=-1)


def test_prune_dry_run_then_real(manager: BackupManager, tree: Path, clock: ManualClock) -> None:
    """--dry-run lists what would go and deletes nothing; the real prune deletes exactly that,
    artifacts included, and never a full that a kept incremental needs."""
    from buttress.backup import Files

    manager.configure("site", Files(tree))
    made = []
    for day in range(6):
        kind = "full" if day in (0, 3) else "incremental"
        (tree / f"day{day}.txt").write_text(str(day))
        set_mtime(tree / f"day{day}.txt", 1_000_000_000 * day + 1)
        made.append(manager.create("site", kind))
        clock.advance(DAY)
    policy = RetentionPolicy(last=1)
    dry = manager.prune(policy, dry_run=True)
    assert dry.dry_run
    assert dry.deleted == tuple(b.id for b in reversed(made[:3]))
    assert len(manager.list()) == 6
    assert "needed by" in " ".join(dry.kept[made[3].id])
    done = manager.prune(policy)
    assert done.deleted == dry.deleted
    assert done.freed_bytes == dry.freed_bytes > 0
    assert [b.id for b in manager.list()] == [b.id for b in made[3:]]
    store = Path(manager.destination.describe().removeprefix("file://"))
    assert {p.name for p in (store / "site").iterdir()} == {b.id for b in made[3:]}
    manager.restore(made[-1].id, tree.parent / "restored")


def test_retention_days_protect_then_expire(
    manager: BackupManager, tree: Path, clock: ManualClock
) -> None:
    """create(retention=...) keeps a backup until then; after that a prune without a policy
    removes it."""
    from buttress.backup import Files

    manager.configure("site", Files(tree))
    old = manager.create("site", retention=2 * DAY)
    clock.advance(DAY)
    manager.create("site")
    assert manager.prune().deleted == ()
    clock.advance(2 * DAY)
    assert manager.prune().deleted == (old.id,)


def test_failed_backups_are_pruned(manager: BackupManager, tmp_path: Path) -> None:
    """A backup that failed is recorded with its error, and the next prune removes it."""
    from buttress.backup import Files

    manager.configure("gone", Files(tmp_path / "does-not-exist"))
    with pytest.raises(Exception, match="not a directory"):
        manager.create("gone")
    (failed,) = manager.list("gone")
    assert failed.status == "failed"
    assert "not a directory" in (failed.error or "")
    assert manager.prune(dry_run=True).deleted == (failed.id,)
    manager.prune()
    assert manager.list("gone") == []
    assert dataclasses.replace(failed, status="completed").status == "completed"
