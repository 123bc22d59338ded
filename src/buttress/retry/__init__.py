"""Retries: backoff schedules with jitter, per-error rules, a shared retry budget, and ``Retry``.

>>> from buttress.retry import Backoff, Retry
>>> retry = Retry(on=ConnectionError, attempts=3, backoff=Backoff.constant(0))
>>> retry.call(lambda: "ok")
'ok'
"""

from __future__ import annotations

from buttress.retry._backoff import Backoff, BackoffKind, Jitter
from buttress.retry._budget import BudgetStats, RetryBudget
from buttress.retry._core import RetryableResult, RetryStats
from buttress.retry._retry import Retry
from buttress.retry._rules import RetryOptions, RetryRule, RetrySpec

__all__ = [
    "Backoff",
    "BackoffKind",
    "BudgetStats",
    "Jitter",
    "Retry",
    "RetryBudget",
    "RetryOptions",
    "RetryRule",
    "RetrySpec",
    "RetryStats",
    "RetryableResult",
]
