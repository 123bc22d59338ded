"""Dead letter queue: failed work kept durably, classified, retried on a schedule, shown to people.

>>> from buttress.dlq import DeadLetterQueue
>>> with DeadLetterQueue("sqlite:///:memory:") as dlq:
...     id = dlq.add({"order": 7}, error=ConnectionError("smtp down"), queue="emails")
...     letter = dlq.get(id)
...     letter.status.value, letter.classification.value, letter.payload
('pending', 'transient', {'order': 7})

Records (``DeadLetter``) move through ``Status`` (pending, retrying, parked, resolved,
discarded); ``Classification`` decides what a failure means (rules: ``Rule``, ``Classifier``).
A ``Worker`` re-processes due messages with the handlers registered by ``@dlq.handler(queue)``.
Backends: ``SQLiteBackend`` (``sqlite:///path.db``, group commit) and ``RedisBackend``
(``redis://...``, Streams and a consumer group). See docs/dlq.md.
"""

from __future__ import annotations

from buttress.dlq._alerts import Alerts, AlertState, DeadLetterAlert
from buttress.dlq._backend import Backend, Delivery, NewBatch, Outcome
from buttress.dlq._classify import DEFAULT_RULES, Classifier, Rule, http_status
from buttress.dlq._counters import DURATION_BUCKETS, Counters, DurationHistogram
from buttress.dlq._intake import open_backend
from buttress.dlq._ops import HealthThresholds, Operations
from buttress.dlq._queue import DEFAULT_BACKOFF, DeadLetterQueue
from buttress.dlq._records import (
    OPEN_STATUSES,
    Attempt,
    Classification,
    DeadLetter,
    ErrorInfo,
    Filter,
    Page,
    Stats,
    Status,
)
from buttress.dlq._sqlite import SQLiteBackend
from buttress.dlq._worker import Handler, ProcessReport, Worker

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_RULES",
    "DURATION_BUCKETS",
    "OPEN_STATUSES",
    "AlertState",
    "Alerts",
    "Attempt",
    "Backend",
    "Classification",
    "Classifier",
    "Counters",
    "DeadLetter",
    "DeadLetterAlert",
    "DeadLetterQueue",
    "Delivery",
    "DurationHistogram",
    "ErrorInfo",
    "Filter",
    "Handler",
    "HealthThresholds",
    "NewBatch",
    "Operations",
    "Outcome",
    "Page",
    "ProcessReport",
    "Rule",
    "SQLiteBackend",
    "Stats",
    "Status",
    "Worker",
    "http_status",
    "open_backend",
]


def __getattr__(name: str) -> object:
    # RedisBackend needs redis-py (buttress[redis]): imported when asked for, never before.
    if name == "RedisBackend":
        from buttress.dlq._redis import RedisBackend

        return RedisBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
