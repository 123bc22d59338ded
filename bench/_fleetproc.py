"""Worker processes sharing a breaker, for bench/fleet.py and the multi-process tests.

``Fleet(n, url, options, tmp)`` starts ``n`` spawned processes; each builds a breaker named
``dep`` (shared through the store at ``url`` under the fleet's own key prefix, or local-only
when ``url`` is None) and calls a dependency through it in a loop, 1 ms apart. The dependency is
"dead" while the file ``fleet.dead`` exists; every call that reaches it after its death adds
one to ``hits[i]``. Each worker publishes its breaker's state (``STATES`` index) and whether its
snapshot is degraded, and counts every call that ran (``ran[i]``), until the fleet stops.
Workers do not log (the breakers' state changes would flood the terminal).
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["STATES", "Fleet", "delete_keys", "worker"]

STATES = ("closed", "open", "half_open", "forced_open", "disabled")


class Dead(Exception):
    """The dependency is down."""


def open_store(url: str, prefix: str) -> Any:
    """A store for ``url`` under ``prefix`` (Redis with a short timeout, to notice outages)."""
    from buttress.stores import RedisStore, store_from_url

    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url, prefix=prefix, timeout=0.2)
    return store_from_url(url, prefix=prefix)


def delete_keys(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` at the Redis ``url``."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def worker(
    i: int,
    url: str | None,
    prefix: str,
    options: dict[str, Any],
    dead: str,
    arrays: dict[str, Any],
    ready: Any,
    stop: Any,
) -> None:
    """Call the dependency through a breaker until ``stop``; see the module docstring."""
    from buttress import events
    from buttress.breaker import CircuitBreaker
    from buttress.errors import CircuitOpenError

    for listener in events.listeners():
        events.remove_listener(listener)
    store = open_store(url, prefix) if url else None
    breaker = CircuitBreaker("dep", shared=store, **options)
    hits, ran, state, degraded = arrays["hits"], arrays["ran"], arrays["state"], arrays["degraded"]

    def dependency() -> None:
        if os.path.exists(dead):
            hits[i] += 1
            raise Dead
        time.sleep(0.0002)

    ready.set()
    try:
        while not stop.is_set():
            try:
                breaker.call(dependency)
                ran[i] += 1
            except Dead:
                ran[i] += 1
            except CircuitOpenError:
                pass
            snap = breaker.snapshot()
            state[i] = STATES.index(snap.state.value)
            degraded[i] = int(snap.degraded)
            time.sleep(0.001)
    finally:
        close = getattr(breaker, "close", None)
        if close is not None:
            close()
        if store is not None:
            store.close()


class Fleet:
    """``with Fleet(n, url, options, tmp) as fleet``: processes started, stopped and joined.

    ``prefix`` (default: a new unique one) is the store's key prefix; pass the prefix of an
    earlier fleet to restart it on the same state.
    """

    def __init__(
        self,
        n: int,
        url: str | None,
        options: dict[str, Any],
        tmp: Path,
        *,
        prefix: str | None = None,
    ) -> None:
        self.ctx = multiprocessing.get_context("spawn")
        self.n = n
        self.dead = str(tmp / "fleet.dead")
        self.prefix = prefix if prefix is not None else f"buttress-test:{uuid.uuid4().hex[:12]}:"
        self.arrays = {k: self.ctx.Array("i", n) for k in ("hits", "ran", "state", "degraded")}
        self.stop = self.ctx.Event()
        self.readies = [self.ctx.Event() for _ in range(n)]
        self.procs = [
            self.ctx.Process(
                target=worker,
                args=(i, url, self.prefix, options, self.dead, self.arrays, ready, self.stop),
                daemon=True,
            )
            for i, ready in enumerate(self.readies)
        ]

    def __enter__(self) -> Fleet:
        for proc in self.procs:
            proc.start()
        for ready in self.readies:
            if not ready.wait(30):
                self.__exit__(None, None, None)
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
        self.procs = []

    def kill_dependency(self) -> None:
        """The dependency dies (for every worker at once)."""
        Path(self.dead).touch()

    def revive_dependency(self) -> None:
        """The dependency comes back."""
        if os.path.exists(self.dead):
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
