"""An event loop in a daemon thread of its own, for running the async maintenance jobs from the
sync bodies of Celery tasks.

One loop lives as long as the worker process: the health registry and monitor keep tasks (a
background refresh of a stale check) in the loop they ran in, so a loop per task run
(``asyncio.run``) would cancel them half-way. Started on first use, so a prefork child starts
its own after the fork.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """Runs coroutines in one event loop in a daemon thread, started on the first ``run``."""

    def __init__(self, name: str = "buttress-celery-loop") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=self._main, args=(loop,), name=self.name)
                thread.daemon = True
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _main(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())  # the to_thread threads
        finally:
            loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` in the loop and wait for its result (its exception is raised here)."""
        loop = self._ensure()
        if self._thread is threading.current_thread():
            coro.close()
            raise RuntimeError("LoopThread.run called from its own loop: it would deadlock")
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the loop (its pending tasks are cancelled) and wait for the thread; idempotent."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
