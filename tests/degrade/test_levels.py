"""Degradation levels: their order, their names, and the LevelSource protocol."""

from __future__ import annotations

import pytest

from buttress.degrade import DegradationLevel, DegradationManager, LevelSource
from buttress.errors import ConfigError


def test_levels_are_ordered_with_maintenance_on_top() -> None:
    """NORMAL < MINOR < MODERATE < SEVERE < CRITICAL < MAINTENANCE, as integers 0 to 5."""
    assert list(DegradationLevel) == sorted(DegradationLevel)
    assert [int(level) for level in DegradationLevel] == [0, 1, 2, 3, 4, 5]
    assert max(DegradationLevel) is DegradationLevel.MAINTENANCE


@pytest.mark.parametrize("name", ["moderate", "MODERATE", " Moderate "])
def test_from_name_accepts_any_case(name: str) -> None:
    """A level is found by its name in any case, surrounding blanks ignored."""
    assert DegradationLevel.from_name(name) is DegradationLevel.MODERATE


def test_from_name_passes_a_level_through_and_labels_it() -> None:
    """A level given as a level is returned as is; ``label`` is its lower-case name."""
    assert DegradationLevel.from_name(DegradationLevel.SEVERE) is DegradationLevel.SEVERE
    assert DegradationLevel.CRITICAL.label == "critical"


@pytest.mark.parametrize("bad", ["moderat", "", 2, None])
def test_from_name_refuses_anything_else_naming_the_levels(bad: object) -> None:
    """An unknown name (or a non-string) raises ConfigError listing the names."""
    with pytest.raises(ConfigError, match="normal, minor, moderate") as caught:
        DegradationLevel.from_name(bad)  # type: ignore[arg-type]
    assert caught.value.field == "level"


def test_a_manager_is_a_level_source() -> None:
    """A DegradationManager satisfies LevelSource (it has a ``level``); a string does not."""
    manager = DegradationManager()
    try:
        assert isinstance(manager, LevelSource)
        assert not isinstance("normal", LevelSource)
    finally:
        manager.close()
