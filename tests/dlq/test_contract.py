"""The backend contract: every test runs on SQLite and on Redis, through the public queue."""

from __future__ import annotations

import math

import pytest

from buttress import ConfigError, RateLimitedError
from buttress.dlq import Classification, Filter, Status
from buttress.errors import DeadLetterError

ERROR = ConnectionError("smtp down")


def test_add_then_get_round_trips(make_dlq, clock) -> None:
    """A record reads back with everything it was added with, pending after the first delay."""
    dlq = make_dlq()
    id = dlq.add(
        {"to": "a@example.com", "n": [1, 2.5, None]},
        error=ERROR,
        queue="emails",
        key="order-1",
        headers={"tenant": "acme"},
        max_attempts=4,
    )
    letter = dlq.get(id)
    assert letter is not None
    assert letter.payload == {"to": "a@example.com", "n": [1, 2.5, None]}
    assert (letter.queue, letter.key, dict(letter.headers)) == (
        "emails",
        "order-1",
        {"tenant": "acme"},
    )
    assert (letter.error.type, letter.error.message) == ("ConnectionError", "smtp down")
    assert letter.classification is Classification.TRANSIENT
    assert letter.status is Status.PENDING
    assert letter.next_attempt_at - clock.time() == pytest.approx(1.0)
    assert (letter.attempts, letter.max_attempts) == (0, 4)
    assert [a.error_type for a in letter.history] == ["ConnectionError"]
    assert dlq.get("999999") is None
    assert dlq.get("not-an-id") is None


def test_add_many_returns_ids_in_order(make_dlq) -> None:
    """add_many stores every payload and returns their ids in the order given."""
    dlq = make_dlq()
    ids = dlq.add_many([{"n": n} for n in range(5)], error=ERROR, queue="jobs")
    assert len(set(ids)) == 5
    assert [dlq.get(i).payload for i in ids] == [{"n": n} for n in range(5)]
    assert dlq.add_many([], error=ERROR) == []


def test_large_add_many_is_one_batch(make_dlq) -> None:
    """A batch larger than one script call (Redis) or statement still stores all of it."""
    dlq = make_dlq()
    ids = dlq.add_many(list(range(1200)), error=ERROR)
    assert len(set(ids)) == 1200
    assert dlq.stats().total == 1200
    assert dlq.get(ids[-1]).payload == 1199


def test_duplicate_key_keeps_one_record(make_dlq) -> None:
    """A key already stored (or repeated in one batch) returns the first record's id."""
    dlq = make_dlq()
    first = dlq.add({"v": 1}, error=ERROR, key="k1")
    assert dlq.add({"v": 2}, error=ERROR, key="k1") == first
    ids = dlq.add_many([{"v": 3}, {"v": 4}, {"v": 5}], error=ERROR, keys=["k2", "k1", "k2"])
    assert ids[1] == first
    assert ids[0] == ids[2] != first
    assert dlq.get(first).payload == {"v": 1}
    assert dlq.stats().total == 2


def test_large_keyed_batch_with_headers_round_trips(make_dlq) -> None:
    """A batch (one hash on Redis until its records change) keeps each record's key, the shared
    headers and error, and still finds duplicates (stored and within the batch)."""
    dlq = make_dlq()
    stored = dlq.add({"v": -1}, error=ERROR, key="k3")
    keys = [f"k{i}" for i in range(6)] + ["k0", None]
    ids = dlq.add_many(
        [{"v": i} for i in range(8)], error=ERROR, keys=keys, headers={"tenant": "acme"}
    )
    assert (ids[3], ids[6], len(set(ids))) == (stored, ids[0], 7)
    for i in (0, 1, 2, 4, 5, 7):
        letter = dlq.get(ids[i])
        assert (letter.payload, letter.key) == ({"v": i}, keys[i])
        assert dict(letter.headers) == {"tenant": "acme"}
        assert letter.error.type == "ConnectionError"
    assert dlq.get(stored).payload == {"v": -1}
    assert dlq.stats().total == 7


def test_non_json_payload_writes_nothing(make_dlq) -> None:
    """A payload that is not JSON raises DeadLetterError naming it; nothing of the batch is kept."""
    dlq = make_dlq()
    with pytest.raises(DeadLetterError, match=r"payloads\[2\]"):
        dlq.add_many([{"ok": 1}, {"ok": 2}, {"bad": {1, 2}}], error=ERROR)
    with pytest.raises(DeadLetterError, match="payload"):
        dlq.add({"x": math.nan}, error=ERROR)
    with pytest.raises(ConfigError, match="keys"):
        dlq.add_many([1, 2], error=ERROR, keys=["a"])
    assert dlq.stats().total == 0


def test_permanent_error_parks_at_once(make_dlq) -> None:
    """An error classified permanent is parked when added, with no next attempt."""
    dlq = make_dlq()
    letter = dlq.get(dlq.add({}, error=ValueError("bad address")))
    assert (letter.status, letter.classification) == (Status.PARKED, Classification.PERMANENT)
    assert letter.next_attempt_at is None


def test_rate_limited_add_waits_for_retry_after(make_dlq, clock) -> None:
    """A rate-limited error's retry_after pushes the first attempt past the backoff delay."""
    dlq = make_dlq()
    letter = dlq.get(dlq.add({}, error=RateLimitedError("api", retry_after=30)))
    assert letter.classification is Classification.RATE_LIMITED
    assert letter.next_attempt_at - clock.time() == pytest.approx(30)


def test_list_filters(make_dlq, clock) -> None:
    """list() filters on queue, status, classification, error type, time and ids."""
    dlq = make_dlq()
    a = dlq.add(1, error=ERROR, queue="emails")
    clock.advance(10)
    b = dlq.add(2, error=TimeoutError("slow"), queue="emails")
    c = dlq.add(3, error=KeyError("sku"), queue="orders")

    def ids(**fields: object) -> list[str]:
        return [letter.id for letter in dlq.list(Filter(**fields)).items]

    assert ids() == [c, b, a]
    assert ids(queue="emails") == [b, a]
    assert ids(status="parked") == [c]
    assert ids(classification="timeout") == [b]
    assert ids(error_type="KeyError") == [c]
    assert ids(since=clock.time() - 5) == [c, b]
    assert ids(until=clock.time() - 5) == [a]
    assert ids(ids=(a, c, "nope")) == [c, a]
    assert ids(queue="emails", status="parked") == []


def test_list_pages_with_a_cursor(make_dlq) -> None:
    """Pages come newest first, do not overlap, and the last one has no cursor."""
    dlq = make_dlq()
    added = dlq.add_many(list(range(7)), error=ERROR)
    seen, cursor, pages = [], None, 0
    while True:
        page = dlq.list(limit=3, cursor=cursor)
        seen += [letter.id for letter in page.items]
        pages += 1
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == list(reversed(added))
    assert pages == 3
    filtered = dlq.list(Filter(ids=tuple(added)), limit=4)
    assert len(filtered.items) == 4
    assert filtered.cursor is not None
    rest = dlq.list(Filter(ids=tuple(added)), limit=4, cursor=filtered.cursor)
    assert [x.id for x in filtered.items + rest.items] == list(reversed(added))


def test_lease_takes_due_records_in_due_order(make_dlq, clock) -> None:
    """Records due at scattered times (several index buckets, added out of order) are leased
    earliest first, a batch at a time; those not yet due stay."""
    dlq = make_dlq()
    waits = [50.0, 3.0, 20.0, 17.0, 33.0, 16.5, 90.0]
    ids = {
        dlq.add({"n": i}, error=RateLimitedError("api", wait), queue="q"): wait
        for i, wait in enumerate(waits)
    }
    clock.advance(60)
    now = clock.time()
    taken = []
    while batch := dlq.backend.lease(["q"], now, 2, now + 300, "token"):
        taken.extend(ids[d.letter.id] for d in batch)
    assert taken == sorted(w for w in waits if w <= 60)


def test_worker_resolves_on_success(make_dlq, clock) -> None:
    """A due message goes to its queue's handler; returning normally resolves it."""
    dlq = make_dlq()
    seen = []
    dlq.handler("emails")(lambda letter: seen.append((letter.payload, letter.attempts)))
    id = dlq.add({"to": "x"}, error=ERROR, queue="emails")
    assert dlq.process().taken == 0  # not due yet
    clock.advance(1.5)
    report = dlq.process()
    assert (report.taken, report.resolved) == (1, 1)
    assert seen == [({"to": "x"}, 1)]
    letter = dlq.get(id)
    assert (letter.status, letter.attempts, letter.next_attempt_at) == (Status.RESOLVED, 1, None)


def test_failures_reschedule_then_park(make_dlq, clock) -> None:
    """A failing handler's message is retried after the backoff and parked when attempts end."""
    dlq = make_dlq(max_attempts=3)

    @dlq.handler("jobs")
    def fail(letter: object) -> None:
        raise ConnectionError("still down")

    id = dlq.add({"job": 1}, error=ERROR, queue="jobs")
    for attempt in (1, 2):
        clock.advance(1.5)
        assert dlq.process().retried == 1
        letter = dlq.get(id)
        assert (letter.status, letter.attempts) == (Status.PENDING, attempt)
        assert letter.next_attempt_at - clock.time() == pytest.approx(1.0)
    clock.advance(1.5)
    assert dlq.process().parked == 1
    letter = dlq.get(id)
    assert (letter.status, letter.attempts, letter.next_attempt_at) == (Status.PARKED, 3, None)
    assert [a.number for a in letter.history] == [0, 1, 2, 3]
    assert letter.error.message == "still down"
    assert letter.last_failed_at == clock.time()


def test_permanent_failure_in_handler_parks(make_dlq, clock) -> None:
    """A handler raising a permanent error parks the message at once."""
    dlq = make_dlq()
    dlq.handler("jobs")(lambda letter: int("not a number"))
    id = dlq.add(1, error=ERROR, queue="jobs")
    clock.advance(1.5)
    assert dlq.process().parked == 1
    letter = dlq.get(id)
    assert (letter.status, letter.classification) == (Status.PARKED, Classification.PERMANENT)
    assert letter.error.type == "ValueError"


def test_lost_lease_comes_back_and_stale_outcome_is_refused(make_dlq, env) -> None:
    """A lease that runs out gives the record to the next worker; the first one's outcome is
    refused, the second one's applies (resolved exactly once)."""
    from buttress.dlq import Outcome

    dlq = make_dlq()
    id = dlq.add(1, error=ERROR, queue="q")
    env.elapse(1.0)
    backend, now = dlq.backend, env.clock.time()
    first = backend.lease(["q"], now, 10, now + 0.05, "worker-a:1")
    assert [(d.letter.id, d.lost, d.letter.status) for d in first] == [(id, False, Status.RETRYING)]
    assert backend.lease(["q"], now, 10, now + 0.05, "worker-b:1") == []  # still leased
    env.elapse(0.06)
    now = env.clock.time()
    second = backend.lease(["q"], now, 10, now + 0.05, "worker-b:1")
    assert [(d.letter.id, d.lost, d.letter.attempts) for d in second] == [(id, True, 2)]
    resolve = [Outcome(id, Status.RESOLVED, 2)]
    assert backend.complete(resolve, "worker-a:1", now) == [False]
    assert backend.complete(resolve, "worker-b:1", now) == [True]
    assert backend.complete(resolve, "worker-b:1", now) == [False]
    assert dlq.get(id).status is Status.RESOLVED


def test_lost_last_attempt_parks_without_running(make_dlq, env) -> None:
    """When the lost lease was the last attempt, the next worker parks it (LeaseExpired)."""
    dlq = make_dlq(max_attempts=1, lease=0.05)
    ran = []
    dlq.handler("q")(ran.append)
    id = dlq.add(1, error=ERROR, queue="q")
    env.elapse(1.0)
    now = env.clock.time()
    dlq.backend.lease(["q"], now, 10, now + 0.05, "dead-worker:1")
    env.elapse(0.06)
    assert dlq.process().parked == 1
    assert ran == []
    letter = dlq.get(id)
    assert (letter.status, letter.attempts, letter.error.type) == (Status.PARKED, 1, "LeaseExpired")
    assert letter.history[-1].error_type == "LeaseExpired"


def test_retry_makes_a_record_due_now(make_dlq, clock) -> None:
    """retry() makes a parked record pending and due now; closed records refuse."""
    dlq = make_dlq()
    dlq.handler("q")(lambda letter: None)
    id = dlq.add(1, error=ValueError("bad"), queue="q")
    letter = dlq.retry(id)
    assert (letter.status, letter.next_attempt_at) == (Status.PENDING, clock.time())
    assert dlq.process().resolved == 1
    with pytest.raises(DeadLetterError, match="resolved"):
        dlq.retry(id)
    with pytest.raises(DeadLetterError, match="no dead letter"):
        dlq.retry("424242")


def test_retry_many_by_filter(make_dlq) -> None:
    """retry_many() requeues the matching pending and parked records only."""
    dlq = make_dlq()
    parked = dlq.add_many([1, 2, 3], error=ValueError("bad"), queue="a")
    other = dlq.add(4, error=ValueError("bad"), queue="b")
    assert dlq.retry_many(Filter(queue="a", status="parked")) == 3
    assert {dlq.get(i).status for i in parked} == {Status.PENDING}
    assert dlq.get(other).status is Status.PARKED


def test_edit_replaces_the_payload(make_dlq, env) -> None:
    """edit() replaces a parked record's payload; a leased one refuses."""
    dlq = make_dlq()
    id = dlq.add({"amount": "12,50"}, error=ValueError("bad amount"))
    assert dlq.edit(id, {"amount": 12.5}).payload == {"amount": 12.5}
    with pytest.raises(DeadLetterError, match="payload"):
        dlq.edit(id, {"x": object()})
    leased = dlq.add(2, error=ERROR, queue="q")
    env.elapse(1.0)
    now = env.clock.time()
    dlq.backend.lease(["q"], now, 10, now + 60, "w:1")
    with pytest.raises(DeadLetterError, match="retrying"):
        dlq.edit(leased, 3)


def test_discard_keeps_the_reason(make_dlq, env) -> None:
    """discard() closes an open record with its reason; the holder of its lease loses it."""
    from buttress.dlq import Outcome

    dlq = make_dlq()
    id = dlq.add(1, error=ERROR, queue="q")
    env.elapse(1.0)
    now = env.clock.time()
    dlq.backend.lease(["q"], now, 10, now + 60, "w:1")
    letter = dlq.discard(id, "customer cancelled")
    assert (letter.status, letter.note, letter.next_attempt_at) == (
        Status.DISCARDED,
        "customer cancelled",
        None,
    )
    assert dlq.backend.complete([Outcome(id, Status.RESOLVED, 1)], "w:1", now) == [False]
    with pytest.raises(DeadLetterError, match="discarded"):
        dlq.discard(id, "again")
    with pytest.raises(ConfigError, match="reason"):
        dlq.discard(id, " ")


def test_purge_deletes_matches_and_frees_keys(make_dlq) -> None:
    """purge() deletes what matches (any status); a purged key can be used again."""
    dlq = make_dlq()
    keep = dlq.add(1, error=ERROR, queue="a")
    gone = dlq.add(2, error=ERROR, queue="b", key="k")
    assert dlq.purge(Filter(queue="b")) == 1
    assert dlq.get(gone) is None
    assert dlq.get(keep) is not None
    assert dlq.add(3, error=ERROR, queue="b", key="k") != gone
    assert dlq.purge(Filter()) == 2
    assert dlq.stats().total == 0


def test_stats_counts(make_dlq, clock) -> None:
    """stats() counts by status, queue, classification and error type (open records)."""
    dlq = make_dlq(rate_window=60)
    start = clock.time()
    dlq.add_many([1, 2], error=ERROR, queue="emails")
    clock.advance(5)
    dlq.add(3, error=KeyError("x"), queue="orders")
    discarded = dlq.add(4, error=TimeoutError("t"), queue="orders")
    dlq.discard(discarded, "no longer needed")
    stats = dlq.stats()
    assert stats.total == 4
    assert stats.by_status == {
        "pending": 2,
        "retrying": 0,
        "parked": 1,
        "resolved": 0,
        "discarded": 1,
    }
    assert stats.by_queue["emails"]["pending"] == 2
    assert stats.by_queue["orders"]["parked"] == stats.by_queue["orders"]["discarded"] == 1
    assert stats.by_classification == {"transient": 2, "permanent": 1}
    assert stats.by_error_type == {"ConnectionError": 2, "KeyError": 1}
    assert stats.oldest_pending_at == start
    assert stats.oldest_pending_age == pytest.approx(5)
    assert stats.arrival_rate == pytest.approx(4 / 60)
    assert stats.parked == 1
    assert stats.to_dict()["parked"] == 1


def test_cleanup_removes_old_closed_records(make_dlq, clock) -> None:
    """cleanup() deletes resolved and discarded records past retention, nothing else."""
    dlq = make_dlq(retention=100)
    dlq.handler("q")(lambda letter: None)
    resolved = dlq.add(1, error=ERROR, queue="q")
    clock.advance(1.5)
    dlq.process()
    discarded = dlq.discard(dlq.add(2, error=ERROR), "dup").id
    parked = dlq.add(3, error=ValueError("bad"))
    clock.advance(50)
    assert dlq.cleanup() == 0
    clock.advance(51)
    assert dlq.cleanup() == 2
    assert dlq.get(resolved) is None
    assert dlq.get(discarded) is None
    assert dlq.get(parked) is not None


def test_undecodable_payload_is_poison(make_dlq, env) -> None:
    """A stored payload that no longer decodes is parked as poison, without running."""
    dlq = make_dlq()
    ran = []
    dlq.handler("q")(ran.append)
    id = dlq.add({"ok": True}, error=ERROR, queue="q")
    _corrupt(dlq, id)
    env.elapse(1.5)
    assert dlq.process().parked == 1
    letter = dlq.get(id)
    assert (letter.status, letter.classification) == (Status.PARKED, Classification.POISON)
    assert ran == []


def _corrupt(dlq, id: str) -> None:
    backend = dlq.backend
    if hasattr(backend, "client"):
        backend.client.hset(f"{backend.base}:m:{id}", "p", "{not json")
        return

    def write(conn) -> None:
        conn.execute("UPDATE buttress_dlq SET payload = '{not json' WHERE seq = ?", (int(id),))

    backend._writer.run(write)


async def test_async_add_and_process(make_dlq, clock) -> None:
    """aadd, aadd_many and aprocess with an async handler work like their sync twins."""
    dlq = make_dlq()
    seen = []

    @dlq.handler("q")
    async def handle(letter) -> None:
        seen.append(letter.payload)

    one = await dlq.aadd({"a": 1}, error=ERROR, queue="q")
    many = await dlq.aadd_many([{"b": 1}, {"b": 2}], error=ERROR, queue="q", keys=["x", None])
    assert len({one, *many}) == 3
    clock.advance(1.5)
    report = await dlq.aprocess()
    assert report.resolved == 3
    assert sorted(map(str, seen)) == sorted(map(str, [{"a": 1}, {"b": 1}, {"b": 2}]))


def test_rescheduled_record_keeps_its_own_time(make_dlq, clock) -> None:
    """A record retried by hand and rescheduled after failing is not taken again when the rest
    of its batch comes due: its own next attempt time decides."""
    from buttress.retry import Backoff

    dlq = make_dlq(backoff=Backoff.linear(base=10, step=100, cap=1000))
    dlq.handler("q")(lambda letter: int("x") if letter.payload == 0 else None)
    first = dlq.add_many([0, 1, 2], error=ERROR, queue="q")[0]
    dlq.retry(first)
    assert dlq.process().taken == 1  # only the one retried by hand
    dlq.retry_many(Filter(ids=(first,)))  # parked (permanent) -> due again now
    dlq.handler("q")(lambda letter: (_ for _ in ()).throw(ConnectionError("down")))
    assert dlq.process().retried == 1
    due = dlq.get(first).next_attempt_at
    assert due - clock.time() == pytest.approx(210)  # the third delay: attempts == 2
    clock.advance(11)
    report = dlq.process()
    assert report.taken == 2
    assert dlq.get(first).next_attempt_at == due
