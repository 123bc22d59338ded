"""The worker's decision, without I/O: outcomes over any attempt count, error and lease loss."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from buttress import RateLimitedError
from buttress.dlq import (
    Attempt,
    Classification,
    Classifier,
    DeadLetter,
    Delivery,
    ErrorInfo,
    Status,
)
from buttress.dlq._decide import MAX_HINT, decide, precheck
from buttress.retry import Backoff

NOW = 1_700_000_000.0
BACKOFF = Backoff.exponential(base=10, factor=2, cap=300)
CLASSIFIER = Classifier()
ERRORS = st.sampled_from(
    [
        ConnectionError("down"),
        TimeoutError("slow"),
        ValueError("bad"),
        RuntimeError("odd"),
        RateLimitedError("api", retry_after=45),
        RateLimitedError("api", retry_after=float("inf")),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"),
    ]
)


def letter(attempts: int, max_attempts: int) -> DeadLetter:
    """A leased record whose lease counted ``attempts`` deliveries."""
    first = Attempt(0, NOW - 100, "ConnectionError", "down", Classification.TRANSIENT)
    return DeadLetter(
        id="1",
        queue="q",
        payload={},
        headers={},
        key=None,
        error=ErrorInfo("ConnectionError", "down"),
        classification=Classification.TRANSIENT,
        history=(first,),
        first_failed_at=NOW - 100,
        last_failed_at=NOW - 100,
        next_attempt_at=NOW + 60,
        max_attempts=max_attempts,
        attempts=attempts,
        status=Status.RETRYING,
        updated_at=NOW,
    )


def run(delivery: Delivery, error: BaseException | None):
    return decide(
        delivery,
        error,
        NOW,
        classifier=CLASSIFIER,
        backoff=BACKOFF,
        rng=random.Random(1),
        wall=lambda: NOW,
    )


@given(st.integers(1, 12), st.integers(1, 12), ERRORS, st.booleans())
def test_failure_outcomes(
    attempts: int, max_attempts: int, error: BaseException, lost: bool
) -> None:
    """A failure parks exactly when the error is permanent or poison or attempts ran out;
    otherwise it is due again no earlier than the backoff delay and the error's retry_after
    (capped), and the history gains one entry (two after a lost lease)."""
    delivery = Delivery(letter(attempts, max_attempts), lost)
    outcome = run(delivery, error)
    kind = CLASSIFIER.classify(error)
    assert outcome.attempts == attempts
    assert outcome.classification is kind
    parks = kind in (Classification.PERMANENT, Classification.POISON) or attempts >= max_attempts
    assert (outcome.status is Status.PARKED) == parks
    assert outcome.history is not None
    assert len(outcome.history) == 2 + int(lost)
    assert outcome.history[-1].number == attempts
    if parks:
        assert outcome.next_attempt_at is None
        return
    assert outcome.status is Status.PENDING
    assert outcome.next_attempt_at is not None
    wait = outcome.next_attempt_at - NOW
    assert min(10 * 2**attempts, 300) <= wait <= MAX_HINT
    hint = getattr(error, "retry_after", None)
    if hint is not None:
        assert wait >= min(hint, MAX_HINT)


@given(st.integers(1, 12), st.integers(1, 12), st.booleans())
def test_success_resolves(attempts: int, max_attempts: int, lost: bool) -> None:
    """Success resolves whatever the counts; only a lost lease adds history."""
    outcome = run(Delivery(letter(attempts, max_attempts), lost), None)
    assert (outcome.status, outcome.attempts) == (Status.RESOLVED, attempts)
    assert (outcome.history is not None) == lost


@given(st.integers(1, 12), st.integers(1, 12))
def test_lost_last_attempt_is_parked_before_running(attempts: int, max_attempts: int) -> None:
    """precheck parks a delivery whose lost lease was its last attempt, and nothing else."""
    outcome = precheck(Delivery(letter(attempts, max_attempts), True), NOW)
    if attempts - 1 >= max_attempts:
        assert outcome is not None
        assert (outcome.status, outcome.attempts) == (Status.PARKED, attempts - 1)
        assert outcome.error is not None
        assert outcome.error.type == "LeaseExpired"
    else:
        assert outcome is None
    assert precheck(Delivery(letter(attempts, max_attempts), False), NOW) is None


def test_undecodable_payload_is_poison() -> None:
    """A delivery with a payload problem is parked as poison without running."""
    outcome = precheck(Delivery(letter(1, 5), False, "JSONDecodeError: oops"), NOW)
    assert outcome is not None
    assert (outcome.status, outcome.classification) == (Status.PARKED, Classification.POISON)
    assert outcome.error == ErrorInfo("PayloadDecodeError", "JSONDecodeError: oops")
