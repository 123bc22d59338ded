"""Fixtures of the dead letter queue tests: a queue on each backend, on a manual clock.

``make_dlq(**options)`` builds a ``DeadLetterQueue`` on the backend of the test's ``backend``
parameter (``sqlite``: a file in ``tmp_path``; ``redis``: the real server at
``BUTTRESS_TEST_REDIS_URL`` under a unique key prefix, deleted afterwards), on a
``ManualClock`` whose wall time starts near now. ``env.elapse(seconds)`` advances the clock
and, for Redis, also really waits when it is a lease's span (at most 100 ms), because a lost
lease is reclaimed on the server's own idle time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from buttress.dlq import DeadLetterQueue, SQLiteBackend
from buttress.retry import Backoff
from buttress.testing import ManualClock
from tests.servers import redis_url
from tests.stores.conftest import delete_redis_keys

BACKENDS = ("sqlite", "redis")
QUICK = Backoff.constant(1.0)
"""A backoff of one second between attempts: tests advance the clock past it."""


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Run the test once per backend."""
    return str(request.param)


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock whose wall time is about now."""
    return ManualClock(wall=time.time())


class Env:
    """What a test needs besides the queue: the backend's name and a way to let time pass."""

    def __init__(self, backend: str, clock: ManualClock) -> None:
        self.backend = backend
        self.clock = clock

    def elapse(self, seconds: float) -> None:
        """Advance the clock; on Redis a short span (a lease, <= 100 ms) is also waited for
        real, as the server reclaims a lost lease on its own idle time."""
        self.clock.advance(seconds)
        if self.backend == "redis" and seconds <= 0.1:
            time.sleep(seconds)


@pytest.fixture
def env(backend: str, clock: ManualClock) -> Env:
    """The backend under test and the clock."""
    return Env(backend, clock)


@pytest.fixture
def make_dlq(
    backend: str, clock: ManualClock, tmp_path: Any, request: pytest.FixtureRequest
) -> Iterator[Callable[..., DeadLetterQueue]]:
    """Build queues on the test's backend (closed, and Redis keys deleted, afterwards)."""
    built: list[DeadLetterQueue] = []
    prefix = f"buttress-test:{uuid.uuid4().hex[:12]}:"
    url = redis_url() if backend == "redis" else ""

    def make(**options: Any) -> DeadLetterQueue:
        options.setdefault("clock", clock)
        options.setdefault("backoff", QUICK)
        if backend == "sqlite":
            target: Any = SQLiteBackend(tmp_path / f"dlq{len(built)}.db")
        else:
            from buttress.dlq import RedisBackend

            target = RedisBackend(url, name=f"dlq{len(built)}", prefix=prefix)
        dlq = DeadLetterQueue(target, **options)
        built.append(dlq)
        return dlq

    yield make
    for dlq in built:
        dlq.close()
    if url:
        delete_redis_keys(url, prefix)
