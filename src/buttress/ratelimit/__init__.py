"""Rate limits (six algorithms, a keyed ``RateLimiter``, an ASGI middleware) and load shedding.

>>> from buttress.ratelimit import RateLimiter, TokenBucket
>>> from buttress.testing import ManualClock
>>> clock = ManualClock()
>>> limiter = RateLimiter(TokenBucket("2/second", burst=2), name="api", clock=clock)
>>> [limiter.allow("alice") for _ in range(3)]
[True, True, False]
>>> decision = limiter.try_acquire("alice")
>>> decision.allowed, decision.remaining, round(decision.retry_after, 6)
(False, 0, 0.5)
>>> clock.advance(decision.retry_after)
>>> limiter.try_acquire("alice").allowed
True
"""

from __future__ import annotations

from buttress.ratelimit._adaptive import (
    AdaptiveConcurrency,
    AdaptiveConcurrencyOptions,
    AdaptiveSnapshot,
    ConcurrencyLimitChanged,
)
from buttress.ratelimit._algorithm import Algorithm
from buttress.ratelimit._asgi import RateLimitMiddleware
from buttress.ratelimit._concurrency import (
    ConcurrencyLimiter,
    ConcurrencyLimiterOptions,
    ConcurrencySnapshot,
    LoadShedChanged,
)
from buttress.ratelimit._decision import Decision
from buttress.ratelimit._limiter import (
    RateLimiter,
    RateLimiterOptions,
    RateLimiterSnapshot,
    SharedRateLimiterOptions,
)
from buttress.ratelimit._log import LogState, SlidingWindowLog
from buttress.ratelimit._meter import GCRA, LeakyBucket, TokenBucket
from buttress.ratelimit._queue import WorkQueue
from buttress.ratelimit._queue_events import (
    QueueItemExpired,
    QueueItemFailed,
    QueueWorkersChanged,
    WorkQueueOptions,
    WorkQueueSnapshot,
)
from buttress.ratelimit._rate import parse_period, parse_rate
from buttress.ratelimit._throttle import AdaptiveThrottle, AdaptiveThrottleOptions, ThrottleSnapshot
from buttress.ratelimit._window import FixedWindow, SlidingWindowCounter

__all__ = [
    "GCRA",
    "AdaptiveConcurrency",
    "AdaptiveConcurrencyOptions",
    "AdaptiveSnapshot",
    "AdaptiveThrottle",
    "AdaptiveThrottleOptions",
    "Algorithm",
    "ConcurrencyLimitChanged",
    "ConcurrencyLimiter",
    "ConcurrencyLimiterOptions",
    "ConcurrencySnapshot",
    "Decision",
    "FixedWindow",
    "LeakyBucket",
    "LoadShedChanged",
    "LogState",
    "QueueItemExpired",
    "QueueItemFailed",
    "QueueWorkersChanged",
    "RateLimitMiddleware",
    "RateLimiter",
    "RateLimiterOptions",
    "RateLimiterSnapshot",
    "SharedRateLimiterOptions",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "ThrottleSnapshot",
    "TokenBucket",
    "WorkQueue",
    "WorkQueueOptions",
    "WorkQueueSnapshot",
    "parse_period",
    "parse_rate",
]
