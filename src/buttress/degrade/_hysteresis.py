"""``LevelTracker``: the decision core of a degradation level, with hysteresis and no I/O.

The level rises at once to any higher target. It falls only once every target observed for
``hysteresis`` seconds in a row was below it, and then to the highest of those targets (so a
short bump inside the window is not skipped over). After a fall the next one needs a whole new
window, so two falls are always at least ``hysteresis`` seconds apart: the level cannot flap.
"""

from __future__ import annotations

from dataclasses import dataclass

from buttress.degrade._levels import DegradationLevel

__all__ = ["LevelTracker"]


@dataclass(slots=True)
class LevelTracker:
    """The computed level: ``observe(target, now)`` returns the new level when it changed."""

    hysteresis: float
    level: DegradationLevel = DegradationLevel.NORMAL
    below_since: float | None = None
    """When the targets started being below ``level`` (None: the last one was not)."""
    below_max: DegradationLevel = DegradationLevel.NORMAL
    """The highest target seen since ``below_since``: where the level will fall to."""

    def observe(self, target: DegradationLevel, now: float) -> DegradationLevel | None:
        """Record the ``target`` computed at monotonic time ``now``; the new level if it
        changed, else None."""
        if target >= self.level:
            self.below_since = None
            if target == self.level:
                return None
            self.level = target
            return target
        if self.below_since is None:
            self.below_since, self.below_max = now, target
        elif target > self.below_max:
            self.below_max = target
        if now - self.below_since < self.hysteresis:
            return None
        self.level, self.below_since = self.below_max, None
        return self.level

    def falls_at(self) -> float | None:
        """The monotonic time at which the level will fall if the targets stay below it."""
        if self.below_since is None:
            return None
        return self.below_since + self.hysteresis
