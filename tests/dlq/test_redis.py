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


def test_batch_records_equal_single_records_whichever_way_they_are_written(make_dlq) -> None:
    """A batch's records are copies of one template hash plus their payload; when a copy is
    refused (here: a stray key where the third record goes) the rest are written field by field.
    Every way gives the same fields as a record added on its own, and no template is left."""
    dlq = make_dlq()
    client, base = dlq.backend.client, dlq.backend.base
    alone = client.hgetall(f"{base}:m:{dlq.add({'n': 0}, error=ERROR, queue='q')}")
    copied = dlq.add_many([{"n": i} for i in range(6)], error=ERROR, queue="q")
    next_id = int(copied[-1]) + 1
    client.hset(f"{base}:m:{next_id + 2}", "stray", "1")  # COPY refuses an existing key
    fallback = dlq.add_many([{"n": i} for i in range(6)], error=ERROR, queue="q")
    assert [int(i) for i in fallback] == list(range(next_id, next_id + 6))

    def shape(id: str) -> dict[bytes, bytes]:
        fields = client.hgetall(f"{base}:m:{id}")
        fields.pop(b"stray", None)
        return {k: v for k, v in fields.items() if k != b"p"}

    expected = {k: v for k, v in alone.items() if k != b"p"}
    assert all(shape(id) == expected for id in copied + fallback)
    assert [dlq.get(id).payload for id in fallback] == [{"n": i} for i in range(6)]
    assert not client.exists(f"{base}:template")
