"""The fleet: objects shared by many processes through a store (ARCHITECTURE.md section 5).

``LeaderLock`` elects one holder with a fencing token. ``CircuitBreaker(..., shared=store)``
and ``RetryBudget(..., shared=store)`` (in their own packages) use this package's machinery.
"""

from __future__ import annotations

from buttress.fleet._breaker import SharedCircuitBreaker
from buttress.fleet._budget import SharedRetryBudget
from buttress.fleet._events import FleetStoreDegraded, FleetStoreRestored
from buttress.fleet._leader import LeaderLock

__all__ = [
    "FleetStoreDegraded",
    "FleetStoreRestored",
    "LeaderLock",
    "SharedCircuitBreaker",
    "SharedRetryBudget",
]
