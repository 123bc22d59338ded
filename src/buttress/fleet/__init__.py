"""The fleet: objects shared by many processes through a store (ARCHITECTURE.md section 5).

``LeaderLock`` (and ``AsyncLeaderLock`` on an asyncio store) elects one holder with a fencing
token. ``CircuitBreaker(..., shared=store)`` and ``RetryBudget(..., shared=store)`` (in their
own packages) use this package's machinery. The user's guide is ``docs/fleet.md``.
"""

from __future__ import annotations

from buttress.fleet._breaker import SharedCircuitBreaker
from buttress.fleet._budget import SharedRetryBudget
from buttress.fleet._events import FleetStoreDegraded, FleetStoreRestored
from buttress.fleet._leader import AsyncLeaderLock, LeaderLock

__all__ = [
    "AsyncLeaderLock",
    "FleetStoreDegraded",
    "FleetStoreRestored",
    "LeaderLock",
    "SharedCircuitBreaker",
    "SharedRetryBudget",
]
