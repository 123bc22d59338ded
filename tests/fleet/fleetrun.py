"""Run N worker processes (spawn) sharing a breaker; shared by the multi-process tests and bench."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.fleet._workers import STATES, worker


class Fleet:
    """``with Fleet(n, url, options, tmp) as fleet``: processes started, stopped and joined."""

    def __init__(self, n: int, url: str | None, options: dict[str, Any], tmp: Path) -> None:
        self.ctx = multiprocessing.get_context("spawn")
        self.n = n
        self.dead = str(tmp / f"dead-{uuid.uuid4().hex[:8]}")
        self.prefix = f"buttress-test:{uuid.uuid4().hex[:12]}:"
        self.arrays = {k: self.ctx.Array("i", n) for k in ("hits", "ran", "state", "degraded")}
        self.stop = self.ctx.Event()
        self.readies = [self.ctx.Event() for _ in range(n)]
        self.procs = [
            self.ctx.Process(
                target=worker,
                args=(
                    i,
                    url,
                    self.prefix,
                    options,
                    self.dead,
                    self.arrays,
                    self.readies[i],
                    self.stop,
                ),
                daemon=True,
            )
            for i in range(n)
        ]

    def __enter__(self) -> Fleet:
        for proc in self.procs:
            proc.start()
        for ready in self.readies:
            if not ready.wait(30):
                raise RuntimeError("a worker did not start")
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop.set()
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
            proc.close()
        if os.path.exists(self.dead):
            os.remove(self.dead)

    def kill_dependency(self) -> None:
        """The dependency dies (for every worker at once)."""
        Path(self.dead).touch()

    def revive_dependency(self) -> None:
        """The dependency comes back."""
        os.remove(self.dead)

    def states(self) -> list[str]:
        """Each worker's breaker state."""
        return [STATES[s] for s in self.arrays["state"][:]]

    def total(self, name: str) -> int:
        """The sum of one per-worker counter."""
        return sum(self.arrays[name][:])

    def wait_for(self, check: Callable[[], bool], within: float) -> float:
        """Poll ``check`` in 10 ms steps; the seconds it took (inf if never)."""
        start = time.monotonic()
        while not check():
            if time.monotonic() - start > within:
                return float("inf")
            time.sleep(0.01)
        return time.monotonic() - start
