"""``DegradationManager``: the service's degradation level, from rules, with hysteresis, manual
overrides, features that switch off, events, alerts and a bounded history."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from buttress import _options as opt
from buttress import events
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._redact import redact
from buttress.degrade._alerts import AlertDispatcher
from buttress.degrade._events import DegradationChanged, WakeListener
from buttress.degrade._features import (
    FeatureGate,
    FeatureUse,
    feature_level,
    features_view,
)
from buttress.degrade._hysteresis import LevelTracker
from buttress.degrade._levels import DegradationLevel
from buttress.degrade._override import Override, OverrideStore
from buttress.degrade._periodic import Periodic
from buttress.degrade._rules import Rule, RuleContext, check_rules, rules_view
from buttress.errors import ConfigError
from buttress.events import emit
from buttress.health._report import rfc3339

if TYPE_CHECKING:
    from buttress.health import AlertSink, HealthRegistry
    from buttress.registry import Registry
    from buttress.stores import KeyValueStore

__all__ = ["DegradationManager"]

logger = logging.getLogger("buttress")

NORMAL = DegradationLevel.NORMAL


class DegradationManager:
    """The level of a service, computed from ``rules`` and overridden by hand.

    ``DegradationManager(rules=(), *, features=None, hysteresis=60.0, interval=5.0,
    history=100, sinks=(), health=None, registry=None, store=None, name="degradation",
    clock=None)``. The level is the highest level of the rules that hold; it rises at once and
    falls only after ``hysteresis`` seconds below (``LevelTracker``). Rules are evaluated when
    the level is read and ``interval`` seconds passed since the last evaluation, by ``tick()``
    (the periodic task of ``start()`` or the ops server's job) and by ``evaluate()``.

    ``features`` maps a feature's name to the level at which it switches off. ``health`` (a
    ``HealthRegistry``) serves the health rules, ``registry`` (a ``Registry``) the breaker rules
    named by name; the manager registers itself there (kind ``degradation``) for the ops server,
    the CLI and the metrics. ``store`` (a ``KeyValueStore``) keeps the override across restarts
    and shares it with every process using the same store. Every change is a
    ``DegradationChanged`` event, sent to the ``sinks`` (``buttress.health`` alert sinks) and
    kept in a history of at most ``history`` changes.
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        features: Mapping[str, DegradationLevel | str] | None = None,
        hysteresis: opt.Duration = 60.0,
        interval: opt.Duration = 5.0,
        history: int = 100,
        sinks: Iterable[AlertSink] = (),
        health: HealthRegistry | None = None,
        registry: Registry | None = None,
        store: KeyValueStore | None = None,
        name: str = "degradation",
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError("name", name, "must be a non-empty string")
        self.name = name
        self.rules = check_rules(rules, health)
        self.hysteresis = opt.duration("hysteresis", hysteresis, allow_zero=True)
        self.interval = opt.duration("interval", interval)
        self.history_size = opt.integer("history", history)
        self.health = health
        self.registry = registry
        self.store = store
        self._stored = None if store is None else OverrideStore(store, name)
        self.clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._monotonic = self.clock.monotonic
        self._alerts = AlertDispatcher(sinks)
        self._lock = threading.RLock()
        self._tracker = LevelTracker(self.hysteresis)
        self._level = NORMAL
        self._since = self.clock.time()
        self._override: Override | None = None
        self._until: float | None = None  # the override's end on the monotonic clock
        self._target = NORMAL
        self._held: dict[str, str] = {}  # rule -> reason, for the rules that hold
        self._errors: dict[str, str] = {}  # rule -> the error of its last check
        self._history: deque[DegradationChanged] = deque(maxlen=self.history_size)
        self._features: dict[str, DegradationLevel] = {}
        self._uses: dict[str, FeatureUse] = {}
        self._periodic = Periodic(self.tick, self.interval, self.clock, f"degradation {name}")
        self._due = self.clock.monotonic()
        self.changes = 0
        """How many times the level changed."""
        declared = {f: feature_level(f, at) for f, at in (features or {}).items()}
        if registry is not None:
            if registry.of_kind("degradation"):
                raise ConfigError("registry", registry, "already has a degradation manager")
            registry.attach("degradation", self, name)
        for feature, off_at in declared.items():
            self.add_feature(feature, off_at)
        if store is not None:
            self.reload()
        self._wake = WakeListener(self)
        events.add_listener(self._wake, kinds=WakeListener.kinds)

    # -- reading ------------------------------------------------------------------------------

    @property
    def level(self) -> DegradationLevel:
        """The current level (evaluates the rules first when ``interval`` has passed)."""
        if self._monotonic() >= self._due:
            return self.evaluate(when_due=True)
        return self._level

    @property
    def override(self) -> Override | None:
        """The manual override in force, or None."""
        _ = self.level  # an expired override ends here
        return self._override

    def allows(self, feature: str) -> bool:
        """Whether ``feature`` is on: the level is below the one it switches off at. KeyError
        for a feature never declared."""
        try:
            off_at = self._features[feature]
        except KeyError:
            raise KeyError(
                f"no feature named {feature!r} (declare it: features=, add_feature)"
            ) from None
        if self._monotonic() >= self._due:  # the level property, inlined: this is the hot path
            self.evaluate(when_due=True)
        return self._level < off_at

    def features(self) -> dict[str, DegradationLevel]:
        """Every feature and the level at which it switches off."""
        return dict(self._features)

    def history(self) -> tuple[DegradationChanged, ...]:
        """The most recent changes (at most ``history``), oldest first."""
        return tuple(self._history)

    # -- declaring ----------------------------------------------------------------------------

    def add_feature(self, feature: str, off_at: DegradationLevel | str) -> None:
        """Declare ``feature``, off from level ``off_at`` up (``MINOR`` to ``MAINTENANCE``)."""
        level = feature_level(feature, off_at)
        with self._lock:
            self._features[feature] = level
            if feature not in self._uses:
                use = self._uses[feature] = FeatureUse(feature)
                if self.registry is not None:
                    self.registry.attach("fallback", use, feature)

    def fallback(self, feature: str, fallback: Callable[..., Any]) -> FeatureGate:
        """A policy (and decorator, sync or async) running ``fallback`` with the call's
        arguments instead of the function while ``feature`` is off; each use is counted and
        evented (``FallbackUsed``)."""
        if feature not in self._features:
            raise ConfigError("feature", feature, "is not declared (features= or add_feature)")
        return FeatureGate(self, feature, fallback, self._uses[feature])

    # -- overriding ---------------------------------------------------------------------------

    def set_level(
        self,
        level: DegradationLevel | str,
        *,
        reason: str,
        actor: str,
        expires_in: opt.Duration | None = None,
    ) -> Override:
        """Force ``level`` until ``expires_in`` seconds pass (None: until ``clear()``); the
        rules keep being evaluated underneath and take over again when it ends."""
        chosen = DegradationLevel.from_name(level)
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError("reason", reason, "must say why the level is set by hand")
        if not isinstance(actor, str) or not actor:
            raise ConfigError("actor", actor, "must name who sets the level")
        seconds = opt.optional_duration("expires_in", expires_in)
        wall = self.clock.time()
        expires = None if seconds is None else wall + seconds
        override = Override(chosen, redact(reason.strip()), actor, wall, expires)
        self._apply(override, f"manual: {override.reason}", actor)
        if self._stored is not None:
            self._stored.save(override)
        return override

    def clear(self, *, actor: str, reason: str | None = None) -> Override | None:
        """End the manual override (the computed level applies again); returns it, or None if
        there was none."""
        with self._lock:
            old = self._override
        if old is None:
            return None
        why = "override cleared" + (f": {redact(reason)}" if reason else "")
        self._apply(None, why, actor)
        if self._stored is not None:
            self._stored.save(None)
        return old

    def _apply(self, override: Override | None, reason: str, actor: str | None) -> None:
        now = self.clock.monotonic()
        with self._lock:
            self._override = override
            self._until = None
            if override is not None and override.expires_at is not None:
                self._until = now + (override.expires_at - self.clock.time())
            change = self._settle(reason, actor)
            self._schedule(now)
        self._publish(change)

    def reload(self) -> None:
        """Adopt the override held in ``store`` (set or cleared by another process)."""
        if self._stored is None:
            return
        ok, stored = self._stored.load()
        with self._lock:
            same = not ok or stored == self._override
        if not same:
            actor = stored.actor if stored is not None else None
            reason = f"manual: {stored.reason}" if stored is not None else "override cleared"
            self._apply(stored, reason, actor)

    # -- evaluating ---------------------------------------------------------------------------

    def evaluate(self, *, when_due: bool = False) -> DegradationLevel:
        """Evaluate the rules now (``when_due``: only if an evaluation is due) and return the
        level (the hysteresis still applies)."""
        now = self.clock.monotonic()
        with self._lock:
            if when_due and now < self._due:  # another thread evaluated meanwhile
                return self._level
            self._due = now + self.interval  # first: a rule reading the level does not recurse
            context = RuleContext(now, self.health, self.registry)
            held: dict[str, str] = {}
            target = NORMAL
            for rule in self.rules:
                try:
                    reason = rule.check(context)
                except Exception as exc:
                    self._rule_failed(rule, exc)
                    continue
                self._errors.pop(rule.name, None)
                if reason is not None:
                    held[rule.name] = reason
                    target = max(target, rule.level)
            self._held, self._target = held, target
            rising = target > self._tracker.level
            self._tracker.observe(target, now)
            change = None
            if self._until is not None and now >= self._until:
                self._override, self._until = None, None
                change = self._settle("override expired", None)
            else:
                change = self._settle(self._computed_reason(rising), None)
            self._schedule(now)
            level = self._level
        self._publish(change)
        return level

    async def tick(self) -> DegradationLevel:
        """Refresh the health results the rules read (stale ones in the background), reload
        the stored override, then evaluate."""
        if self.health is not None and any(rule.kind == "health" for rule in self.rules):
            await self.health.run(None, wait=False)
        if self.store is not None:
            await asyncio.to_thread(self.reload)
        return self.evaluate()

    def _rule_failed(self, rule: Rule, exc: Exception) -> None:
        text = redact(f"{type(exc).__name__}: {exc}")
        if self._errors.get(rule.name) != text:
            logger.warning("degradation %r: rule %r failed: %s", self.name, rule.name, text)
        self._errors[rule.name] = text

    def _computed_reason(self, rising: bool) -> str:
        if rising:
            return "; ".join(self._held.values())
        held = "; ".join(self._held.values()) or "no rule holds"
        return f"recovered after {self.hysteresis:g}s: {held}"

    def _settle(self, reason: str, actor: str | None) -> DegradationChanged | None:
        """Make the effective level the override's or the tracker's; the change, if any."""
        new = self._override.level if self._override is not None else self._tracker.level
        old = self._level
        if new == old:
            return None
        self._level, self._since = new, self.clock.time()
        self.changes += 1
        off = tuple(sorted(f for f, at in self._features.items() if new >= at))
        change = DegradationChanged(
            self.name, self._since, old.label, new.label, reason, actor=actor, features_off=off
        )
        self._history.append(change)
        return change

    def _schedule(self, now: float) -> None:
        """Evaluate again at the next interval, or sooner when a fall or an expiry is due."""
        due = self._due if self._due > now else now + self.interval
        for moment in (self._tracker.falls_at(), self._until):
            if moment is not None and moment < due:
                due = moment
        self._due = due

    def _publish(self, change: DegradationChanged | None) -> None:
        if change is None:
            return
        emit(change)
        self._alerts.dispatch(change)

    # -- running ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether ``start()`` launched the periodic task and it has not stopped."""
        return self._periodic.running

    def start(self) -> None:
        """Tick now and then every ``interval`` seconds in a task of the running loop."""
        self._periodic.start()

    async def stop(self) -> None:
        """Stop the periodic task, then wait for the alerts being delivered."""
        await self._periodic.stop()
        await self.drain()

    async def drain(self) -> None:
        """Wait until every alert sent so far was delivered (or failed and was logged)."""
        await self._alerts.drain()

    # -- describing ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Everything an operator needs as plain data: the level, why, the override, the rules,
        the features, the pending fall and the history (newest last)."""
        level = self.level
        with self._lock:
            override = self._override
            falls_at = self._tracker.falls_at()
            wall_offset = self.clock.time() - self.clock.monotonic()
            rules = rules_view(self.rules, self._held, self._errors)
            features = features_view(self._features, self._uses, level)
            return {
                "name": self.name,
                "level": level.label,
                "value": int(level),
                "since": rfc3339(self._since),
                "computed": self._tracker.level.label,
                "target": self._target.label,
                "override": None if override is None else override.to_dict(),
                "falls_to": None if falls_at is None else self._tracker.below_max.label,
                "falls_at": None if falls_at is None else rfc3339(falls_at + wall_offset),
                "hysteresis": self.hysteresis,
                "interval": self.interval,
                "levels": [member.label for member in DegradationLevel],
                "rules": rules,
                "features": features,
                "changes": self.changes,
                "history": [change.to_dict() for change in self._history],
            }

    def wake(self) -> None:
        """Evaluate the rules at the next read of the level (a breaker or a check changed)."""
        self._due = 0.0

    def close(self) -> None:
        """Stop listening to breaker and health events (the rules are then evaluated on the
        interval only); calling it again does nothing."""
        events.remove_listener(self._wake)

    def describe(self) -> dict[str, Any]:
        """The manager's settings as plain data (for ``Registry.describe``)."""
        rules = [rule.describe() for rule in self.rules]
        features = {f: at.label for f, at in sorted(self._features.items())}
        options = {"hysteresis": self.hysteresis, "interval": self.interval, "rules": rules}
        options.update(history=self.history_size, features=features)
        return {"policy": "DegradationManager", "name": self.name, "options": options}

    def __repr__(self) -> str:
        return f"<DegradationManager {self.name!r} level={self._level.label}>"
