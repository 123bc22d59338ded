"""Code run in child processes by the SQLite multi-process tests (importable under spawn)."""

from __future__ import annotations

import time
from typing import Any

from buttress.stores import store_from_url


def cas_increment(store: Any, key: str) -> int:
    """Add one to ``key`` with a get / compare_and_set loop; how many attempts lost a race."""
    lost = 0
    while True:
        raw = store.get(key)
        if store.compare_and_set(key, raw, str(int(raw or b"0") + 1)):
            return lost
        lost += 1


def hammer(url: str, prefix: str, rounds: int, start: Any, results: Any) -> None:
    """Meet the others at ``start``, then ``rounds`` times: incr a counter, CAS-increment another.

    Puts (start time, end time, CAS attempts lost to a race) on ``results``.
    """
    lost = 0
    with store_from_url(url, prefix=prefix) as store:
        store.get("warm-up")  # open the connection before the race starts
        start.wait()
        began = time.time()
        for _ in range(rounds):
            store.incr("incr")
            lost += cas_increment(store, "cas")
    results.put((began, time.time(), lost))
