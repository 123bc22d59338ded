"""Read-only mode: writes raise ReadOnlyError while the database is degraded; reads go on."""

from __future__ import annotations

import pytest

from buttress import Registry
from buttress.degrade import DegradationManager, ReadOnlyError, ReadOnlyGuard
from buttress.errors import ConfigError, RejectedError
from buttress.events import FallbackUsed
from buttress.testing import ManualClock, RecordingListener
from tests.conftest import run


async def test_writes_are_refused_from_the_level_up(
    mode: str, clock: ManualClock, recorded: RecordingListener
) -> None:
    """Below ``at`` writes run; from ``at`` up they raise ReadOnlyError, counted and evented."""
    manager = DegradationManager(clock=clock)
    try:
        guard = ReadOnlyGuard(manager, at="severe", name="orders-db")
        assert await run(mode, guard, lambda: "written") == "written"
        manager.set_level("moderate", reason="t", actor="t")
        assert not guard.read_only
        manager.set_level("severe", reason="postgres failover", actor="t")
        assert guard.read_only
        with pytest.raises(ReadOnlyError) as caught:
            await run(mode, guard, lambda: "written")
        assert isinstance(caught.value, RejectedError)
        assert caught.value.source == "orders-db"
        assert "read-only" in str(caught.value)
        assert guard.used == 1
        assert [e.source for e in recorded.of(FallbackUsed)] == ["orders-db"]
    finally:
        manager.close()


def test_a_predicate_decides_and_reads_are_left_alone() -> None:
    """With a predicate the guard follows it; only decorated writes are guarded."""
    degraded = [False]
    guard = ReadOnlyGuard(lambda: degraded[0])
    rows = {"a": 1}

    @guard
    def write(key: str, value: int) -> None:
        rows[key] = value

    def read(key: str) -> int:
        return rows[key]

    write("b", 2)
    degraded[0] = True
    with pytest.raises(ReadOnlyError):
        write("c", 3)
    assert read("b") == 2
    assert "c" not in rows
    degraded[0] = False
    guard.check()  # returns: writes are allowed again
    write("c", 3)
    assert rows["c"] == 3


def test_guard_registers_as_a_fallback_and_describes_itself() -> None:
    """``registry.add`` files it under ``fallback``; describe names its source and level."""
    registry = Registry()
    guard = registry.add(ReadOnlyGuard(lambda: False, at="critical", name="ro"))
    assert registry.get("ro", "fallback") is guard
    assert guard.describe()["options"]["at"] == "critical"


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"when": 3}, "when"), ({"when": bool, "at": "normal"}, "at")]
)
def test_bad_options_are_refused(kwargs, field: str) -> None:
    """A non-callable source or NORMAL as the level: ConfigError naming the field."""
    with pytest.raises(ConfigError) as caught:
        ReadOnlyGuard(**kwargs)
    assert caught.value.field == field
