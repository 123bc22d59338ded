"""buttress: circuit breakers, retries, timeouts, bulkheads and more, for Python services.

The policies share one shape: ``call(fn, *args)``, ``await acall(fn, *args)``, and use as a
decorator on sync or async functions. ``Pipeline`` composes them outer to inner; ``Registry``
hands them out by name. Rate limits, concurrency limits and work queues come from
``buttress.ratelimit``; degradation levels, fallbacks and flags from ``buttress.degrade``; the
dead letter queue from ``buttress.dlq``; backups from ``buttress.backup``. Errors live in
``buttress.errors``, events in ``buttress.events``, test helpers (``ManualClock``,
``RecordingListener``) in ``buttress.testing``.
"""

from __future__ import annotations

from buttress._clock import Clock, SystemClock
from buttress._deadline import remaining
from buttress.breaker import BreakerState, CircuitBreaker
from buttress.bulkhead import Bulkhead
from buttress.chaos import Chaos
from buttress.errors import (
    AlreadyRunningError,
    BulkheadFullError,
    ButtressError,
    CircuitOpenError,
    ConfigError,
    DeadLetterError,
    LoadShedError,
    RateLimitedError,
    RejectedError,
    TimeoutError,
)
from buttress.fallback import Fallback
from buttress.hedge import Hedge
from buttress.pipeline import Pipeline
from buttress.ratelimit import (
    GCRA,
    AdaptiveConcurrency,
    AdaptiveThrottle,
    ConcurrencyLimiter,
    Decision,
    FixedWindow,
    LeakyBucket,
    RateLimiter,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
    WorkQueue,
)
from buttress.registry import Registry
from buttress.retry import Backoff, Retry, RetryBudget, RetryRule
from buttress.timeout import Timeout

__all__ = [  # noqa: RUF022 - plain sorted(), as tests/test_docs.py checks
    "AdaptiveConcurrency",
    "AdaptiveThrottle",
    "AlreadyRunningError",
    "Backoff",
    "BreakerState",
    "Bulkhead",
    "BulkheadFullError",
    "ButtressError",
    "Chaos",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "ConcurrencyLimiter",
    "ConfigError",
    "DeadLetterError",
    "Decision",
    "Fallback",
    "FixedWindow",
    "GCRA",
    "Hedge",
    "LeakyBucket",
    "LoadShedError",
    "Pipeline",
    "RateLimitedError",
    "RateLimiter",
    "Registry",
    "RejectedError",
    "Retry",
    "RetryBudget",
    "RetryRule",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "SystemClock",
    "Timeout",
    "TimeoutError",
    "TokenBucket",
    "WorkQueue",
    "remaining",
]
