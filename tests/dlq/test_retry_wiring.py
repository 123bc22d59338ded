"""Retry(dead_letter=dlq): calls that give up are kept with their arguments as the payload."""

from __future__ import annotations

import pytest

from buttress import ConfigError, Retry
from buttress.dlq import Classification, DeadLetterQueue, Status
from buttress.retry import Backoff
from buttress.testing import ManualClock


@pytest.fixture
def dlq():
    """An in-memory dead letter queue."""
    with DeadLetterQueue("sqlite:///:memory:", clock=ManualClock()) as q:
        yield q


def failing(*args: object, **kwargs: object) -> None:
    raise ConnectionError("smtp down")


def retry(dlq, **options: object) -> Retry:
    return Retry(
        on=ConnectionError,
        attempts=3,
        backoff=Backoff.constant(0),
        clock=ManualClock(),
        dead_letter=dlq,
        **options,
    )


def test_exhausted_call_is_dead_lettered(dlq) -> None:
    """A call that exhausts its attempts is kept with its JSON arguments, and the error the
    caller gets is the call's own, noting the dead letter's id."""
    policy = retry(dlq, queue="emails", name="send")
    with pytest.raises(ConnectionError, match="smtp down") as info:
        policy.call(failing, "a@example.com", subject="hi")
    (letter,) = dlq.list().items
    assert letter.queue == "emails"
    assert letter.payload == {"args": ["a@example.com"], "kwargs": {"subject": "hi"}}
    assert letter.headers["retry"] == "send"
    assert letter.headers["function"].endswith("failing")
    assert letter.classification is Classification.TRANSIENT
    assert any(f"dead-lettered as {letter.id}" in note for note in info.value.__notes__)


async def test_async_exhausted_call_is_dead_lettered(dlq) -> None:
    """acall dead-letters through the queue's async add; the queue defaults to the retry's name."""
    policy = retry(dlq, name="sync-orders")

    async def afailing(order: int) -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await policy.acall(afailing, 42)
    (letter,) = dlq.list().items
    assert (letter.queue, letter.payload) == ("sync-orders", {"args": [42], "kwargs": {}})


def test_decorated_functions_dead_letter(dlq) -> None:
    """The decorator form dead-letters too."""

    @retry(dlq, queue="q")
    def send(to: str) -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        send("x")
    assert dlq.list().items[0].payload == {"args": ["x"], "kwargs": {}}


def test_non_json_arguments_are_kept_as_poison(dlq) -> None:
    """Arguments that are not JSON are kept as their repr and parked as poison."""
    with pytest.raises(ConnectionError):
        retry(dlq, queue="q").call(failing, {1, 2})
    (letter,) = dlq.list().items
    assert letter.payload == {"repr": "(({1, 2},), {})"}
    assert (letter.status, letter.classification) == (Status.PARKED, Classification.POISON)


def test_only_exhausted_calls_are_dead_lettered(dlq) -> None:
    """Successes and errors that are not retried add nothing."""
    policy = retry(dlq, queue="q")
    assert policy.call(lambda: "ok") == "ok"
    with pytest.raises(ValueError):
        policy.call(lambda: int("x"))
    assert dlq.stats().total == 0


def test_a_broken_queue_never_hides_the_error(dlq) -> None:
    """When dead-lettering fails, the caller still gets the call's own error, noted."""
    dlq.close()
    with pytest.raises(ConnectionError) as info:
        retry(dlq, queue="q").call(failing)
    assert any("could not dead-letter it: StoreError" in n for n in info.value.__notes__)


def test_bad_wiring_options() -> None:
    """dead_letter must be a queue and queue a non-empty string."""
    with pytest.raises(ConfigError, match="dead_letter"):
        Retry(on=ConnectionError, dead_letter=object())  # type: ignore[arg-type]
    with DeadLetterQueue("sqlite:///:memory:") as dlq, pytest.raises(ConfigError, match="queue"):
        Retry(on=ConnectionError, dead_letter=dlq, queue="")
