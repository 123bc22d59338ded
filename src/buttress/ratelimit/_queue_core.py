"""The bounded priority buffer under ``WorkQueue``: no clock, no loop, no I/O.

One deque per priority (0 the highest), first in, first out within a priority. Removing an
item from the middle (expired, cancelled) only marks it dead and fixes the counts; dead items
are skipped when they reach an end of their deque, and a deque holding many of them is
compacted, so every operation is O(1) amortised.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

from buttress._clock import TimerHandle

__all__ = ["Entry", "PriorityBuffer"]

T = TypeVar("T")
R = TypeVar("R")


class Entry(Generic[T, R]):
    """One submitted item: its future, priority, when it was queued and when it expires."""

    __slots__ = ("deadline", "enqueued", "future", "item", "live", "priority", "seconds", "timer")

    def __init__(
        self,
        item: T,
        future: asyncio.Future[R],
        priority: int,
        enqueued: float,
        seconds: float | None,
    ) -> None:
        self.item = item
        self.future = future
        self.priority = priority
        self.enqueued = enqueued
        self.seconds = seconds
        self.deadline = None if seconds is None else enqueued + seconds
        self.live = True
        self.timer: TimerHandle | None = None


class PriorityBuffer(Generic[T, R]):
    """Live entries by priority, with their counts."""

    __slots__ = ("depth", "level_depth", "levels")

    def __init__(self, priorities: int) -> None:
        self.levels: list[deque[Entry[T, R]]] = [deque() for _ in range(priorities)]
        self.level_depth = [0] * priorities
        self.depth = 0

    def push(self, entry: Entry[T, R]) -> None:
        """Append ``entry`` at the back of its priority."""
        level = entry.priority
        queue = self.levels[level]
        queue.append(entry)
        if len(queue) > 2 * self.level_depth[level] + 32:  # mostly dead entries: compact
            self.levels[level] = deque(e for e in queue if e.live)
        self.level_depth[level] += 1
        self.depth += 1

    def remove(self, entry: Entry[T, R]) -> bool:
        """Mark a live entry dead and uncount it; False if it was not live."""
        if not entry.live:
            return False
        entry.live = False
        self.level_depth[entry.priority] -= 1
        self.depth -= 1
        return True

    def pop(self) -> Entry[T, R] | None:
        """Remove and return the oldest live entry of the highest priority."""
        for queue in self.levels:
            while queue:
                entry = queue.popleft()
                if self.remove(entry):
                    return entry
        return None

    def victim(self, priority: int) -> Entry[T, R] | None:
        """Remove and return the newest live entry of the lowest priority below ``priority``
        (a larger number), or None if every live entry is of ``priority`` or higher."""
        for level in range(len(self.levels) - 1, priority, -1):
            queue = self.levels[level]
            while queue:
                entry = queue.pop()
                if self.remove(entry):
                    return entry
        return None

    def oldest(self) -> float | None:
        """When the oldest live entry was queued, or None if there is none."""
        heads = [next((e.enqueued for e in queue if e.live), None) for queue in self.levels]
        found = [head for head in heads if head is not None]
        return min(found) if found else None

    def clear(self) -> list[Entry[T, R]]:
        """Remove and return every live entry."""
        taken = []
        for queue in self.levels:
            while queue:
                entry = queue.popleft()
                if self.remove(entry):
                    taken.append(entry)
        return taken
