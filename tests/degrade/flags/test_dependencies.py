"""Flags that switch off on their own: a degradation level, a failing health check."""

from __future__ import annotations

from collections.abc import Callable

from buttress.degrade import DegradationLevel, DegradationManager
from buttress.degrade.flags import Flag, FlagStore, FlagSuspended
from buttress.health import HealthRegistry
from buttress.testing import ManualClock, RecordingListener


def _health(clock: ManualClock, state: dict[str, bool]) -> HealthRegistry:
    """A health registry with one check, ``db``, passing while ``state["db"]`` is true."""
    health = HealthRegistry(clock=clock)
    for name in [c.name for c in health.checks()]:
        health.remove(name)

    def db() -> bool:
        return state["db"]

    health.add(db, name="db", ttl=0.001)
    return health


def test_flag_follows_the_degradation_manager(
    make_flags: Callable[..., FlagStore], clock: ManualClock
) -> None:
    """With off_at, the flag is off while the manager's level is at or above it, at once."""
    manager = DegradationManager(clock=clock)
    flags = make_flags(levels=manager)
    flags.create(Flag("recommendations", enabled=True, off_at="moderate"))
    assert flags.enabled("recommendations")
    manager.set_level("severe", reason="drill", actor="test")
    assert not flags.enabled("recommendations")
    assert flags.evaluate("recommendations").reason == "DEGRADED"
    manager.clear(actor="test")
    assert flags.enabled("recommendations")
    manager.close()


def test_suspension_is_evented_at_refresh(
    make_flags: Callable[..., FlagStore], clock: ManualClock
) -> None:
    """A refresh events a flag switching itself off, and back on, with the cause."""
    manager = DegradationManager(clock=clock)
    flags = make_flags(levels=manager)
    flags.create(Flag("search", enabled=True, off_at="severe"))
    with RecordingListener() as events:
        manager.set_level("critical", reason="outage", actor="test")
        flags.refresh()
        assert flags.status("search") == "suspended"
        manager.clear(actor="test")
        flags.refresh()
    changes = events.of(FlagSuspended)
    assert [(e.source, e.suspended) for e in changes] == [("search", True), ("search", False)]
    assert "critical >= severe" in changes[0].cause
    manager.close()


def test_flag_follows_a_required_health_check(
    make_flags: Callable[..., FlagStore], clock: ManualClock
) -> None:
    """A flag requiring "db" is off after a refresh sees db failing, on again once it passes."""
    state = {"db": True}
    health = _health(clock, state)
    flags = make_flags(health=health)
    flags.create(Flag("writes", enabled=True, requires=["db"]))
    health.run_sync(fresh=True)
    flags.refresh()
    assert flags.enabled("writes")
    state["db"] = False
    health.run_sync(fresh=True)
    assert flags.refresh() is True
    assert not flags.enabled("writes")
    assert flags.evaluate("writes").reason == "UNHEALTHY"
    assert flags.view("writes")["cause"] == "required health check failing: db"
    state["db"] = True
    health.run_sync(fresh=True)
    flags.refresh()
    assert flags.enabled("writes")


def test_no_level_source_means_never_degraded(flags: FlagStore) -> None:
    """Without a level source, off_at has no effect (the level is unknown)."""
    flags.create(Flag("f", enabled=True, off_at=DegradationLevel.MINOR))
    assert flags.enabled("f")
    assert flags.evaluate("f").reason == "STATIC"
