"""Delivery of level changes to alert sinks (``buttress.health``'s ``LogSink``,
``WebhookSink``, ``CallableSink`` or any ``AlertSink``), without ever blocking the caller.

A change can happen anywhere the level is read, in a coroutine or in a plain thread. In an
event loop each sink is sent the change in a task of that loop; elsewhere a short-lived daemon
thread runs the sends in a loop of its own. ``drain()`` waits for both.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable

from buttress.degrade._events import DegradationChanged
from buttress.errors import ConfigError
from buttress.health import AlertSink

__all__ = ["AlertDispatcher"]

logger = logging.getLogger("buttress")


class AlertDispatcher:
    """Sends each change to every sink in the background; a failing sink is logged."""

    __slots__ = ("_lock", "_tasks", "_threads", "sinks")

    def __init__(self, sinks: Iterable[AlertSink]) -> None:
        self.sinks: tuple[AlertSink, ...] = tuple(sinks)
        for index, sink in enumerate(self.sinks):
            if not isinstance(sink, AlertSink):
                raise ConfigError(f"sinks[{index}]", sink, "must have an async send(alert)")
        self._tasks: set[asyncio.Task[None]] = set()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def dispatch(self, change: DegradationChanged) -> None:
        """Start delivering ``change``; returns at once."""
        if not self.sinks:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            task = loop.create_task(self._deliver(change), name="buttress-degradation-alert")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        thread = threading.Thread(
            target=self._deliver_in_thread,
            args=(change,),
            name="buttress-degradation-alert",
            daemon=True,
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _deliver_in_thread(self, change: DegradationChanged) -> None:
        try:
            asyncio.run(self._deliver(change))
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    async def _deliver(self, change: DegradationChanged) -> None:
        await asyncio.gather(*(_send(sink, change) for sink in self.sinks))

    async def drain(self) -> None:
        """Wait for every delivery started so far."""
        loop = asyncio.get_running_loop()
        while mine := [task for task in self._tasks if task.get_loop() is loop]:
            await asyncio.gather(*mine, return_exceptions=True)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            await asyncio.to_thread(thread.join)


async def _send(sink: AlertSink, change: DegradationChanged) -> None:
    try:
        await sink.send(change)
    except Exception:
        logger.exception("degradation alert sink %r failed on %s", sink, change.source)
