"""Graceful degradation: levels computed from health, breakers and load, manual overrides,
features that switch off with a fallback, fallback strategies and partial failure."""

from buttress.degrade._events import DegradationChanged
from buttress.degrade._fallbacks import (
    AlternateFallback,
    CachedFallback,
    CannedResponses,
    FallbackStrategy,
)
from buttress.degrade._features import FeatureGate
from buttress.degrade._levels import DegradationLevel, LevelSource
from buttress.degrade._manager import DegradationManager
from buttress.degrade._outbox import Accepted, InMemoryOutbox, Outbox, OutboxItem, QueueForLater
from buttress.degrade._override import Override
from buttress.degrade._partial import (
    PartialFailure,
    PartialFailureError,
    PartialResult,
    StepFailure,
)
from buttress.degrade._readonly import ReadOnlyError, ReadOnlyGuard
from buttress.degrade._rules import BreakerRule, HealthRule, LoadRule, PredicateRule, Rule
from buttress.degrade._tiered import AsyncTieredCache, TieredCache

__all__ = [
    "Accepted",
    "AlternateFallback",
    "AsyncTieredCache",
    "BreakerRule",
    "CachedFallback",
    "CannedResponses",
    "DegradationChanged",
    "DegradationLevel",
    "DegradationManager",
    "FallbackStrategy",
    "FeatureGate",
    "HealthRule",
    "InMemoryOutbox",
    "LevelSource",
    "LoadRule",
    "Outbox",
    "OutboxItem",
    "Override",
    "PartialFailure",
    "PartialFailureError",
    "PartialResult",
    "PredicateRule",
    "QueueForLater",
    "ReadOnlyError",
    "ReadOnlyGuard",
    "Rule",
    "StepFailure",
    "TieredCache",
]

# Feature flags (buttress.degrade.flags): the names most code needs, also from here.
from buttress.degrade.flags import Flag, FlagRule, FlagStore, Variant

__all__ += ["Flag", "FlagRule", "FlagStore", "Variant"]
