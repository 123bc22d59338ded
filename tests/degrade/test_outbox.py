"""Queue for later: failed requests go to an outbox and the caller gets an Accepted receipt."""

from __future__ import annotations

from typing import Any

import pytest

from buttress import Registry
from buttress.degrade import Accepted, InMemoryOutbox, QueueForLater
from buttress.errors import ConfigError, DeadLetterError
from buttress.events import FallbackUsed
from buttress.testing import ManualClock, RecordingListener
from tests.conftest import run


def send_email(to: str, subject: str) -> str:
    """A mail service that is down."""
    raise ConnectionError("smtp down")


async def test_a_failed_call_is_queued_and_accepted(
    mode: str, clock: ManualClock, recorded: RecordingListener
) -> None:
    """The caller gets Accepted with the outbox id; the payload and error are kept."""
    outbox = InMemoryOutbox(clock=clock)
    later = QueueForLater(outbox, queue="emails", key=lambda to, subject: f"{to}:{subject}")
    receipt = await run(mode, later, send_email, "ann@example.com", "hello")
    assert isinstance(receipt, Accepted)
    assert (receipt.queue, receipt.key) == ("emails", "ann@example.com:hello")
    [item] = outbox.pending("emails")
    assert item.id == receipt.id
    assert item.payload == {"args": ["ann@example.com", "hello"], "kwargs": {}}
    assert item.error == "ConnectionError: smtp down"
    assert later.used == 1
    assert len(recorded.of(FallbackUsed)) == 1
    assert receipt.to_dict()["status"] == "accepted"


async def test_a_successful_call_returns_its_result(mode: str) -> None:
    """Nothing is queued when the call works."""
    outbox = InMemoryOutbox()
    later = QueueForLater(outbox)
    assert await run(mode, later, lambda x: x * 2, 21) == 42
    assert len(outbox) == 0


def test_duplicate_keys_are_queued_once() -> None:
    """The same idempotency key gives the same id and one item."""
    outbox = InMemoryOutbox()
    later = QueueForLater(outbox, key=lambda to, subject: to)
    first = later.call(send_email, "a@x", "1")
    second = later.call(send_email, "a@x", "2")
    assert isinstance(first, Accepted)
    assert isinstance(second, Accepted)
    assert first.id == second.id
    assert len(outbox) == 1


def test_defer_queues_without_calling_and_custom_payloads() -> None:
    """``defer`` queues at once (a feature that is off); ``payload`` shapes what is kept."""
    outbox = InMemoryOutbox()
    later = QueueForLater(outbox, payload=lambda order_id: {"order": order_id})
    receipt = later.defer(7)
    assert outbox.pending()[0].payload == {"order": 7}
    assert outbox.pending()[0].error is None
    assert receipt.key is None


def test_deliver_hands_items_over_in_order_and_keeps_failures() -> None:
    """Delivery drops what the handler took; a failure keeps that item and stops its queue."""
    outbox = InMemoryOutbox()
    for n in range(3):
        outbox.add({"n": n}, queue="a", key=None, error=None)
    outbox.add({"n": 9}, queue="b", key="k", error=None)
    seen: list[Any] = []

    def handler(payload: dict[str, int]) -> None:
        if payload["n"] == 1:
            raise ConnectionError("still down")
        seen.append(payload["n"])

    assert outbox.deliver(handler) == 2
    assert seen == [0, 9]
    assert [i.payload["n"] for i in outbox.pending()] == [1, 2]
    assert outbox.add({"n": 9}, queue="b", key="k") != ""  # the key is free again


async def test_adeliver_with_an_async_handler() -> None:
    """``adeliver`` awaits the handler for each pending item."""
    outbox = InMemoryOutbox()
    outbox.add("x", queue="q", key=None, error=None)
    got: list[str] = []

    async def handler(payload: str) -> None:
        got.append(payload)

    assert await outbox.adeliver(handler, queue="q") == 1
    assert got == ["x"]
    assert len(outbox) == 0


def test_outbox_refuses_non_json_and_overflow() -> None:
    """A payload that is not JSON, or a full outbox, raises DeadLetterError; nothing kept."""
    outbox = InMemoryOutbox(max_items=1)
    with pytest.raises(DeadLetterError, match="not JSON"):
        outbox.add(object(), queue="q", key=None, error=None)
    outbox.add(1, queue="q", key=None, error=None)
    with pytest.raises(DeadLetterError, match="full"):
        outbox.add(2, queue="q", key=None, error=None)
    assert len(outbox) == 1


def test_outbox_error_propagates_to_the_caller() -> None:
    """If the outbox refuses, the caller sees that error (the work is not silently lost)."""
    later = QueueForLater(InMemoryOutbox(), payload=lambda *a: object())
    with pytest.raises(DeadLetterError):
        later.call(send_email, "a", "b")
    assert later.used == 0


class RecordLike:
    """A DLQ whose ``add`` returns a record with an ``id``."""

    def __init__(self) -> None:
        self.added: list[tuple[Any, str, str | None]] = []

    def add(self, payload: Any, *, error: BaseException | None, queue: str, key: str | None):
        self.added.append((payload, queue, key))
        return type("Record", (), {"id": 41})()


def test_any_dlq_like_outbox_works() -> None:
    """An outbox returning a record uses its ``id`` in the receipt; registry files it."""
    dlq = RecordLike()
    later = QueueForLater(dlq, queue="orders", name="orders-later")
    receipt = later.call(send_email, "a", "b")
    assert isinstance(receipt, Accepted)
    assert receipt.id == "41"
    assert dlq.added == [({"args": ["a", "b"], "kwargs": {}}, "orders", None)]
    registry = Registry()
    registry.attach("fallback", later, later.name)
    assert registry.get("orders-later", "fallback").snapshot().used == 1


async def test_decorator_sync_and_async() -> None:
    """As a decorator it returns the result or the receipt, for sync and async functions."""
    outbox = InMemoryOutbox()
    later = QueueForLater(outbox)

    @later
    def charge(amount: int) -> str:
        raise ConnectionError

    @later
    async def acharge(amount: int) -> str:
        return "charged"

    assert isinstance(charge(5), Accepted)
    assert await acharge(5) == "charged"
    assert charge.__name__ == "charge"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"outbox": object()}, "outbox"),
        ({"queue": ""}, "queue"),
        ({"payload": "json"}, "payload"),
        ({"key": 3}, "key"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any], field: str) -> None:
    """Bad options raise ConfigError naming the field."""
    options: dict[str, Any] = {"outbox": InMemoryOutbox(), **kwargs}
    with pytest.raises(ConfigError) as caught:
        QueueForLater(**options)
    assert caught.value.field == field
