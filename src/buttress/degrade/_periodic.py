"""``Periodic``: run a coroutine function now and then every ``interval`` seconds in a task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from buttress._clock import Clock

__all__ = ["Periodic"]

logger = logging.getLogger("buttress")


class Periodic:
    """``start()`` runs ``fn()`` at once and then every ``interval`` seconds on ``clock``, in a
    task named ``name`` of the running loop; a failing run is logged; ``await stop()``."""

    __slots__ = ("_task", "clock", "fn", "interval", "name")

    def __init__(
        self, fn: Callable[[], Awaitable[object]], interval: float, clock: Clock, name: str
    ) -> None:
        self.fn = fn
        self.interval = interval
        self.clock = clock
        self.name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the task was started and has not stopped."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the task; RuntimeError if it is running already."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        """Cancel the task and wait for it to end (does nothing if not running)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():  # the caller is cancelled too
                raise

    async def _loop(self) -> None:
        while True:
            try:
                await self.fn()
            except Exception:
                logger.exception("%s failed", self.name)
            await self.clock.asleep(self.interval)
