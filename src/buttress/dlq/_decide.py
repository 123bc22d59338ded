"""The worker's decision, without I/O: what an attempt's result means for a dead letter.

``decide`` takes the delivery, what the handler did (None for success, or its error) and
``now``, and returns the ``Outcome`` to store: resolved; pending again after the backoff delay
for this attempt (no earlier than the error's ``retry_after``); or parked when the error is
permanent or poison, or attempts ran out. A delivery whose previous lease ran out gets a
``LeaseExpired`` entry in its history, and is parked without running when that lost attempt was
its last. A payload that does not decode is poison and is parked without running.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from itertools import islice

from buttress.dlq._backend import Delivery, Outcome
from buttress.dlq._classify import Classifier
from buttress.dlq._records import PARKING, Attempt, Classification, ErrorInfo, Status
from buttress.retry import Backoff

__all__ = ["LEASE_EXPIRED", "POISON_PAYLOAD", "backoff_delay", "decide", "precheck"]

LEASE_EXPIRED = ErrorInfo(
    "LeaseExpired", "the lease ran out before the worker reported (it died or was too slow)"
)
POISON_PAYLOAD = "PayloadDecodeError"
MAX_HINT = 7 * 86400.0
"""The longest ``retry_after`` honoured (an endless one would never come due)."""


def backoff_delay(backoff: Backoff, index: int, rng: random.Random) -> float:
    """The ``index``-th delay (0-based) of ``backoff``."""
    if index == 0:
        return backoff.first(rng)
    return next(islice(backoff.delays(rng), index, None))


def _history(delivery: Delivery, now: float) -> tuple[Attempt, ...]:
    letter = delivery.letter
    if not delivery.lost:
        return letter.history
    lost = Attempt(
        letter.attempts - 1,
        now,
        LEASE_EXPIRED.type,
        LEASE_EXPIRED.message,
        Classification.TIMEOUT,
    )
    return (*letter.history, lost)


def precheck(delivery: Delivery, now: float) -> Outcome | None:
    """The outcome of a delivery that must not run (poison payload, last attempt lost), or None."""
    letter = delivery.letter
    before = letter.attempts - 1  # the lease counted this delivery; it will not happen
    if delivery.problem is not None:
        error = ErrorInfo(POISON_PAYLOAD, delivery.problem)
        entry = Attempt(before, now, error.type, error.message, Classification.POISON)
        return Outcome(
            letter.id,
            Status.PARKED,
            before,
            None,
            error,
            Classification.POISON,
            (*_history(delivery, now), entry),
            now,
        )
    if delivery.lost and before >= letter.max_attempts:
        return Outcome(
            letter.id,
            Status.PARKED,
            before,
            None,
            LEASE_EXPIRED,
            Classification.TIMEOUT,
            _history(delivery, now),
            now,
        )
    return None


def decide(
    delivery: Delivery,
    error: BaseException | None,
    now: float,
    *,
    classifier: Classifier,
    backoff: Backoff,
    rng: random.Random,
    wall: Callable[[], float],
) -> Outcome:
    """The outcome of one attempt: ``error`` is None when the handler succeeded."""
    letter = delivery.letter
    if error is None:
        history = _history(delivery, now) if delivery.lost else None
        return Outcome(letter.id, Status.RESOLVED, letter.attempts, history=history)
    kind = classifier.classify(error)
    info = ErrorInfo.of(error)
    history = (
        *_history(delivery, now),
        Attempt(letter.attempts, now, info.type, info.message, kind),
    )
    if kind in PARKING or letter.attempts >= letter.max_attempts:
        return Outcome(letter.id, Status.PARKED, letter.attempts, None, info, kind, history, now)
    delay = backoff_delay(backoff, letter.attempts, rng)
    hint = classifier.retry_after(error, wall)
    if hint is not None and hint > delay:
        delay = min(hint, MAX_HINT)
    return Outcome(
        letter.id, Status.PENDING, letter.attempts, now + delay, info, kind, history, now
    )
