"""Features that switch off with the level: their fallback counters and the ``FeatureGate``
policy that runs a fallback instead of the function while the feature is off."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from buttress._policy import Policy
from buttress.degrade._levels import DegradationLevel
from buttress.errors import ConfigError
from buttress.events import FallbackUsed, emit, wants
from buttress.fallback import FallbackSnapshot

if TYPE_CHECKING:
    from buttress.degrade._manager import DegradationManager

__all__ = ["FeatureGate", "FeatureGateOptions", "FeatureUse", "feature_level", "features_view"]

P = ParamSpec("P")
T = TypeVar("T")


def feature_level(feature: object, off_at: object) -> DegradationLevel:
    """The level at which ``feature`` switches off (``MINOR`` to ``MAINTENANCE``), checked."""
    if not isinstance(feature, str) or not feature:
        raise ConfigError("feature", feature, "must be a non-empty string")
    try:
        level = DegradationLevel.from_name(off_at)  # type: ignore[arg-type]
    except ConfigError:
        raise ConfigError(f"features.{feature}", off_at, "must be a level name") from None
    if level is DegradationLevel.NORMAL:
        raise ConfigError(f"features.{feature}", off_at, "must be above normal")
    return level


def features_view(
    features: Mapping[str, DegradationLevel], uses: Mapping[str, FeatureUse], level: int
) -> list[dict[str, Any]]:
    """Each feature as plain data (by name): where it switches off, whether it is on at
    ``level``, and how many times its fallback ran."""
    return [
        {
            "name": feature,
            "off_at": off_at.label,
            "enabled": level < off_at,
            "fallback_used": uses[feature].used,
        }
        for feature, off_at in sorted(features.items())
    ]


class FeatureUse:
    """How many times a feature's fallbacks ran instead of it: read by the metrics
    (``buttress_fallback_used_total{name=<feature>}``) and the ops reports like a ``Fallback``."""

    __slots__ = ("name", "used")

    def __init__(self, name: str) -> None:
        self.name = name
        self.used = 0

    def snapshot(self) -> FallbackSnapshot:
        """How many times the feature's fallback was used."""
        return FallbackSnapshot(self.name, self.used)

    def note(self, time: float) -> None:
        """Count one use and emit a ``FallbackUsed`` event (when anyone listens)."""
        self.used += 1
        if wants(FallbackUsed):
            emit(FallbackUsed(self.name, time, None))

    def describe(self) -> dict[str, Any]:
        """The counter as plain data."""
        return {"policy": "FeatureFallback", "name": self.name, "options": {}}


@dataclass(frozen=True, slots=True)
class FeatureGateOptions:
    """A feature gate's options; see ``DegradationManager.fallback``."""

    feature: str
    fallback: Callable[..., Any]


class FeatureGate(Policy):
    """Runs the function while ``feature`` is allowed, else ``fallback`` with the same
    arguments (awaited in ``acall`` if it returns an awaitable). Built by
    ``DegradationManager.fallback(feature, fallback)``; use it as a decorator or in a pipeline."""

    __slots__ = ("_allows", "_manager", "_use", "name", "options")

    options: FeatureGateOptions

    def __init__(
        self,
        manager: DegradationManager,
        feature: str,
        fallback: Callable[..., Any],
        use: FeatureUse,
    ) -> None:
        if not callable(fallback):
            raise ConfigError("fallback", fallback, "must be callable with the same arguments")
        self._manager = manager
        self._allows = manager.allows
        self._use = use
        self.name = feature
        self.options = FeatureGateOptions(feature, fallback)

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` while the feature is on, else the fallback's answer."""
        if self._allows(self.name):
            return fn(*args, **kwargs)
        self._use.note(self._manager.clock.time())
        answer = self.options.fallback(*args, **kwargs)
        if inspect.isawaitable(answer):
            if inspect.iscoroutine(answer):
                answer.close()  # never awaited; closing it avoids a "never awaited" warning
            raise TypeError(
                f"feature {self.name!r}: the fallback is async; use it on an async function"
            )
        return cast(T, answer)

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` while the feature is on, else the fallback's answer."""
        if self._allows(self.name):
            return await fn(*args, **kwargs)
        self._use.note(self._manager.clock.time())
        answer = self.options.fallback(*args, **kwargs)
        if inspect.isawaitable(answer):
            answer = await answer
        return cast(T, answer)
