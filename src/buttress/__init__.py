"""buttress: circuit breakers, retries, timeouts, bulkheads and more, for Python services.

The policies share one shape: ``call(fn, *args)``, ``await acall(fn, *args)``, and use as a
decorator on sync or async functions. ``Pipeline`` composes them outer to inner; ``Registry``
hands them out by name. Errors live in ``buttress.errors``, events in ``buttress.events``, test
helpers (``ManualClock``, ``RecordingListener``) in ``buttress.testing``.
"""

from __future__ import annotations

from buttress._clock import Clock, SystemClock
from buttress._deadline import remaining
from buttress.breaker import BreakerState, CircuitBreaker
from buttress.bulkhead import Bulkhead
from buttress.chaos import Chaos
from buttress.errors import (
    BulkheadFullError,
    ButtressError,
    CircuitOpenError,
    ConfigError,
    LoadShedError,
    RateLimitedError,
    RejectedError,
    TimeoutError,
)
from buttress.fallback import Fallback
from buttress.hedge import Hedge
from buttress.pipeline import Pipeline
from buttress.registry import Registry
from buttress.retry import Backoff, Retry, RetryBudget, RetryRule
from buttress.timeout import Timeout

__all__ = [
    "Backoff",
    "BreakerState",
    "Bulkhead",
    "BulkheadFullError",
    "ButtressError",
    "Chaos",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "ConfigError",
    "Fallback",
    "Hedge",
    "LoadShedError",
    "Pipeline",
    "RateLimitedError",
    "Registry",
    "RejectedError",
    "Retry",
    "RetryBudget",
    "RetryRule",
    "SystemClock",
    "Timeout",
    "TimeoutError",
    "remaining",
]
