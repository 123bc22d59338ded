"""The queue-for-later fallback writing to a DeadLetterQueue, end to end: the receipt, the
record, and replay through the queue's handler."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from buttress.degrade import Accepted, Outbox, QueueForLater
from buttress.dlq import DeadLetterQueue, SQLiteBackend, Status
from buttress.errors import DeadLetterError
from buttress.retry import Backoff
from buttress.testing import ManualClock


@pytest.fixture
def dlq(tmp_path: Any, clock: ManualClock) -> Iterator[DeadLetterQueue]:
    """A queue whose first attempt is due a minute after the failure."""
    queue = DeadLetterQueue(
        SQLiteBackend(tmp_path / "dlq.db"), backoff=Backoff.constant(60), clock=clock
    )
    yield queue
    queue.close()


def test_a_dead_letter_queue_is_an_outbox(dlq: DeadLetterQueue) -> None:
    """The DLQ satisfies the fallback's Outbox protocol."""
    assert isinstance(dlq, Outbox)


def test_deferred_call_is_kept_and_replayed(dlq: DeadLetterQueue, clock: ManualClock) -> None:
    """A failed call returns a receipt whose id is the dead letter's; the record holds the
    call's arguments and error; a repeated key adds nothing; the handler later delivers it."""
    up = False
    sent: list[tuple[str, str]] = []

    def send(to: str, *, subject: str) -> str:
        if not up:
            raise ConnectionError("smtp down")
        sent.append((to, subject))
        return "sent"

    later = QueueForLater(
        dlq, queue="emails", key=lambda to, subject: f"{to}:{subject}", clock=clock
    )
    receipt = later.call(send, "ada@example.com", subject="hello")
    assert isinstance(receipt, Accepted)
    letter = dlq.get(receipt.id)
    assert letter is not None
    assert letter.queue == "emails"
    assert letter.payload == {"args": ["ada@example.com"], "kwargs": {"subject": "hello"}}
    assert (letter.error.type, letter.error.message) == ("ConnectionError", "smtp down")
    assert (letter.classification.value, letter.status) == ("transient", Status.PENDING)
    assert letter.key == "ada@example.com:hello"
    again = later.call(send, "ada@example.com", subject="hello")
    assert isinstance(again, Accepted)
    assert again.id == receipt.id
    assert dlq.stats().total == 1

    @dlq.handler("emails")
    def replay(letter: Any) -> None:
        send(*letter.payload["args"], **letter.payload["kwargs"])

    up = True
    clock.advance(61)
    report = dlq.process()
    assert (report.resolved, sent) == (1, [("ada@example.com", "hello")])
    assert getattr(dlq.get(receipt.id), "status", None) is Status.RESOLVED


async def test_async_calls_are_kept_with_aadd(dlq: DeadLetterQueue, clock: ManualClock) -> None:
    """acall writes through the queue's aadd; an async handler replays the work."""
    delivered: list[int] = []
    later = QueueForLater(dlq, queue="orders", clock=clock)

    @later
    async def place(order: int) -> str:
        raise TimeoutError("warehouse slow")

    receipt = await place(7)
    assert isinstance(receipt, Accepted)
    letter = dlq.get(receipt.id)
    assert letter is not None
    assert (letter.payload, letter.classification.value) == ({"args": [7], "kwargs": {}}, "timeout")

    @dlq.handler("orders")
    async def replay(letter: Any) -> None:
        delivered.extend(letter.payload["args"])

    clock.advance(61)
    report = await dlq.aprocess()
    assert (report.resolved, delivered) == (1, [7])
    assert later.used == 1


def test_a_payload_that_is_not_json_is_refused(dlq: DeadLetterQueue) -> None:
    """Arguments that are not JSON make the DLQ refuse the deferral; nothing is written."""
    later = QueueForLater(dlq, queue="emails")

    def send(data: object) -> None:
        raise ConnectionError("down")

    with pytest.raises(DeadLetterError, match="payload"):
        later.call(send, {1, 2})
    assert dlq.stats().total == 0
    assert later.used == 0
