"""Worker processes for the multi-process fleet tests and bench (importable under spawn).

A worker builds a breaker (shared or local) and calls a dependency in a loop, 1 ms apart. The
dependency is "dead" while the file ``dead`` exists; every call that reaches it after its death
adds one to ``hits[i]``. The worker publishes its breaker's state (``STATES`` index) and whether
its snapshot is degraded, and counts every call that ran (``ran[i]``), until ``stop`` is set.
"""

from __future__ import annotations

import os
import time
from typing import Any

STATES = ("closed", "open", "half_open", "forced_open", "disabled")


class Dead(Exception):
    """The dependency is down."""


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
    from buttress.breaker import CircuitBreaker
    from buttress.errors import CircuitOpenError
    from buttress.stores import RedisStore

    store = RedisStore(url, prefix=prefix, timeout=0.2) if url else None
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
