"""What only the Redis backend has: id ranges in its indexes, and their lazy clean-up."""

from __future__ import annotations

import pytest

from buttress.dlq import Filter

pytestmark = pytest.mark.parametrize("backend", ["redis"], indirect=True)
ERROR = ConnectionError("down")


def test_one_index_entry_per_batch(make_dlq) -> None:
    """A batch adds one member to the listing index and one to the schedule, not one per record."""
    dlq = make_dlq()
    dlq.add_many(list(range(50)), error=ERROR, queue="q")
    dlq.add(50, error=ERROR, queue="q")
    client, base = dlq.backend.client, dlq.backend.base
    assert client.zcard(f"{base}:all") == 2
    assert client.zcard(f"{base}:z:q") == 2
    assert client.zcard(f"{base}:waiting") == 2


def test_listing_skips_and_drops_emptied_ranges(make_dlq) -> None:
    """Purged records of a range are skipped; a range with none left leaves the index."""
    dlq = make_dlq()
    old = dlq.add_many(list(range(5)), error=ERROR, queue="a")
    new = dlq.add_many(list(range(5)), error=ERROR, queue="b")
    assert dlq.purge(Filter(ids=(new[1], new[3]))) == 2
    assert [x.id for x in dlq.list().items] == [new[4], new[2], new[0], *reversed(old)]
    dlq.purge(Filter(queue="a"))
    assert [x.id for x in dlq.list().items] == [new[4], new[2], new[0]]
    assert dlq.backend.client.zcard(f"{dlq.backend.base}:all") == 1


def test_oldest_pending_skips_finished_ranges(make_dlq, clock) -> None:
    """stats() finds the oldest waiting record past ranges whose records all finished."""
    dlq = make_dlq()
    dlq.handler("a")(lambda letter: None)
    dlq.add_many([1, 2], error=ERROR, queue="a")
    clock.advance(5)
    later = clock.time()
    dlq.add(3, error=ERROR, queue="b")
    clock.advance(1)
    dlq.process()
    assert dlq.stats().oldest_pending_at == later
    assert dlq.backend.client.zcard(f"{dlq.backend.base}:waiting") == 1
