"""Property: whatever happens to a queue, stats() agrees with its records, on both backends.

Redis keeps counters updated by every script, SQLite counts rows; random sequences of adds,
worker runs (handlers that succeed, fail transiently or fail permanently), retries, discards,
purges and cleanups must leave both telling the same story as a full listing.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buttress.dlq import OPEN_STATUSES, DeadLetterQueue, Filter, RedisBackend, Status
from buttress.retry import Backoff
from buttress.testing import ManualClock
from tests.servers import redis_url
from tests.stores.conftest import delete_redis_keys

ERRORS = {"transient": ConnectionError("down"), "permanent": ValueError("bad")}
OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.sampled_from(["a", "b"]),
            st.sampled_from(sorted(ERRORS)),
            st.sampled_from([None, "k1", "k2"]),
            st.integers(1, 3),
        ),
        st.tuples(st.just("process"), st.sampled_from(["ok", "transient", "permanent"])),
        st.tuples(st.just("retry"), st.sampled_from([None, "a"])),
        st.tuples(st.just("discard")),
        st.tuples(st.just("purge"), st.sampled_from(["a", "b"])),
        st.tuples(st.just("cleanup")),
    ),
    max_size=12,
)


def apply(dlq: DeadLetterQueue, clock: ManualClock, ops: list[tuple]) -> None:
    outcome = {"now": "ok"}

    def handle(letter: object) -> None:
        if outcome["now"] != "ok":
            raise ERRORS[outcome["now"]]

    dlq.handler("a")(handle)
    dlq.handler("b")(handle)
    for op in ops:
        kind = op[0]
        if kind == "add":
            _, queue, error, key, count = op
            keys = [key] * count if key else None
            dlq.add_many(range(count), error=ERRORS[error], queue=queue, keys=keys)
        elif kind == "process":
            outcome["now"] = op[1]
            clock.advance(2)
            dlq.process()
        elif kind == "retry":
            dlq.retry_many(Filter(queue=op[1]))
        elif kind == "discard":
            page = dlq.list(Filter(status="parked"), limit=1)
            for letter in page.items:
                dlq.discard(letter.id, "property")
        elif kind == "purge":
            dlq.purge(Filter(queue=op[1]))
        else:
            clock.advance(100)
            dlq.cleanup()


def check(dlq: DeadLetterQueue) -> None:
    letters = []
    cursor = None
    while True:
        page = dlq.list(limit=7, cursor=cursor)
        letters += page.items
        cursor = page.cursor
        if cursor is None:
            break
    stats = dlq.stats()
    assert stats.total == len(letters) == len({x.id for x in letters})
    assert {k: v for k, v in stats.by_status.items() if v} == dict(
        Counter(x.status.value for x in letters)
    )
    by_queue = {q: {s: n for s, n in counts.items() if n} for q, counts in stats.by_queue.items()}
    expected = Counter((x.queue, x.status.value) for x in letters)
    assert {(q, s): n for q, c in by_queue.items() for s, n in c.items()} == dict(expected)
    open_ones = [x for x in letters if x.status in OPEN_STATUSES]
    assert dict(stats.by_classification) == dict(Counter(x.classification.value for x in open_ones))
    assert dict(stats.by_error_type) == dict(Counter(x.error.type for x in open_ones))
    for letter in letters:
        waits = letter.status in (Status.PENDING, Status.RETRYING)
        assert (letter.next_attempt_at is not None) == waits
    waiting = [x.first_failed_at for x in letters if x.status in (Status.PENDING, Status.RETRYING)]
    assert stats.oldest_pending_at == (min(waiting) if waiting else None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_sqlite_stats_match_the_records(ops: list[tuple]) -> None:
    """On SQLite, stats() equals a tally of the records after any sequence of operations."""
    clock = ManualClock()
    with DeadLetterQueue(
        "sqlite:///:memory:", clock=clock, backoff=Backoff.constant(1), retention=50, max_attempts=2
    ) as dlq:
        apply(dlq, clock, ops)
        check(dlq)


@pytest.fixture(scope="module")
def live_redis() -> str:
    """The test Redis (skipped, or failed under CI=true, when down)."""
    return redis_url()


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=OPS)
def test_redis_counters_match_the_records(live_redis: str, ops: list[tuple]) -> None:
    """On Redis, the counters the scripts keep equal a tally of the records."""
    clock = ManualClock()
    prefix = f"buttress-test:{uuid.uuid4().hex[:12]}:"
    backend = RedisBackend(live_redis, prefix=prefix)
    try:
        with DeadLetterQueue(
            backend, clock=clock, backoff=Backoff.constant(1), retention=50, max_attempts=2
        ) as dlq:
            apply(dlq, clock, ops)
            check(dlq)
    finally:
        delete_redis_keys(live_redis, prefix)
