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


def test_a_batch_is_one_hash_until_its_records_change(make_dlq) -> None:
    """A batch's records live in one hash (Redis keys grow per batch, not per record); a
    record an action changes moves to a hash of its own with the fields of a record added
    alone; the batch hash goes when its last record left."""
    dlq = make_dlq()
    client, base = dlq.backend.client, dlq.backend.base
    alone = client.hgetall(f"{base}:m:{dlq.add({'n': 0}, error=ERROR, queue='q', key='a')}")
    before = len(list(client.scan_iter(f"{base}*", count=1000)))
    ids = dlq.add_many(
        [{"n": i} for i in range(500)], error=ERROR, queue="q", keys=[None, "b", *[None] * 498]
    )
    assert len(list(client.scan_iter(f"{base}*", count=1000))) == before + 1
    batch = f"{base}:b:{ids[0]}"
    assert int(client.hget(batch, "#")) == 500
    assert [dlq.get(id).payload for id in ids[:3]] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert (dlq.get(ids[1]).key, dlq.get(ids[0]).key) == ("b", None)

    def shape(fields: dict[bytes, bytes]) -> dict[bytes, bytes]:
        return {k: v for k, v in fields.items() if k not in (b"p", b"k", b"u", b"n")}

    dlq.retry(ids[1])  # requeue: the record leaves the batch
    own = client.hgetall(f"{base}:m:{ids[1]}")
    assert shape(own) == shape(alone)
    assert (own[b"p"], own[b"k"]) == (b'{"n":1}', b"b")
    assert int(client.hget(batch, "#")) == 499
    assert not client.hexists(batch, ids[1])
    assert dlq.add({"again": 1}, error=ERROR, key="b") == ids[1]  # its key still points at it
    assert dlq.purge(Filter(ids=tuple(ids))) == 500
    assert not client.exists(batch)
    assert dlq.stats().total == 1
