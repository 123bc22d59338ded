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


def open_together(urls: list[str], start: Any, results: Any) -> None:
    """For each new SQLite file in ``urls``: meet the others at ``start``, then open it (a
    store, a dead letter queue, the ops state and a backup catalog, each turning on WAL and
    creating its schema) and read from it. Puts the failures' descriptions (none when every
    open worked) on ``results``."""
    from buttress.backup._catalog import Catalog
    from buttress.dlq import DeadLetterQueue
    from buttress.ops import StateStore

    failures = []
    for url in urls:
        start.wait()
        path = url.removeprefix("sqlite:///")
        try:
            with store_from_url(url) as store:
                store.get("k")
            dlq = DeadLetterQueue(f"sqlite:///{path}.dlq")
            try:
                dlq.stats()
            finally:
                dlq.close()
            state = StateStore(f"{path}.state")
            try:
                state.version("core")
            finally:
                state.close()
            catalog = Catalog(f"{path}.catalog")
            try:
                catalog._query("SELECT count(*) FROM backups")
            finally:
                catalog.close()
        except Exception as exc:  # reported to the parent, which fails the test
            failures.append(f"{url}: {exc!r}")
    results.put(failures)
