"""Alerts: too many parked records, or records arriving too fast, with a cooldown.

``Alerts(parked_above=None, arrival_rate_above=None, cooldown=300.0, sinks=())`` says when to
alert; ``AlertState.evaluate(stats, now)`` is the decision (no I/O): a metric above its
threshold alerts, and again every ``cooldown`` seconds while it stays above; falling back to
or below the threshold sends one recovery alert. A ``DeadLetterAlert`` is a ``HealthAlert``
(``old``/``new`` are ``ok``/``alert``), so the health monitor's sinks (``LogSink``,
``WebhookSink``, ``CallableSink``) deliver it as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from buttress import _options as opt
from buttress.dlq._records import Stats
from buttress.errors import ConfigError
from buttress.events import HealthAlert
from buttress.health import AlertSink

__all__ = ["AlertState", "Alerts", "DeadLetterAlert"]

logger = logging.getLogger("buttress")


@dataclass(frozen=True, slots=True)
class DeadLetterAlert(HealthAlert):
    """A dead letter queue's ``metric`` (``parked`` or ``arrival_rate``) went above its
    ``threshold`` (``new == "alert"``) or came back (``new == "ok"``) at ``value``."""

    kind: ClassVar[str] = "dlq.alert"
    level: ClassVar[int] = logging.WARNING

    metric: str = ""
    value: float = 0.0
    threshold: float = 0.0

    def message(self) -> str:
        what = "above" if self.new == "alert" else "back to or below"
        unit = "/s" if self.metric == "arrival_rate" else ""
        return (
            f"dead letter queue {self.source!r}: {self.metric} {self.value:g}{unit} is {what} "
            f"the threshold {self.threshold:g}{unit}"
        )


@dataclass(frozen=True, slots=True)
class Alerts:
    """When a dead letter queue alerts, and where the alerts go (see the module docstring)."""

    parked_above: int | None = None
    arrival_rate_above: float | None = None
    cooldown: float = 300.0
    sinks: tuple[AlertSink, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.parked_above is not None:
            opt.integer("parked_above", self.parked_above, minimum=0)
        if self.arrival_rate_above is not None:
            opt.number("arrival_rate_above", self.arrival_rate_above, minimum=0)
        object.__setattr__(
            self, "cooldown", opt.duration("cooldown", self.cooldown, allow_zero=True)
        )
        sinks = tuple(self.sinks)
        for index, sink in enumerate(sinks):
            if not isinstance(sink, AlertSink):
                raise ConfigError(f"sinks[{index}]", sink, "must have an async send(alert)")
        object.__setattr__(self, "sinks", sinks)

    def thresholds(self) -> Iterable[tuple[str, float]]:
        """The metrics watched and their thresholds."""
        if self.parked_above is not None:
            yield "parked", float(self.parked_above)
        if self.arrival_rate_above is not None:
            yield "arrival_rate", float(self.arrival_rate_above)


class AlertState:
    """What was alerted when, per metric; ``evaluate`` decides the next alerts."""

    __slots__ = ("_active", "_last", "alerts")

    def __init__(self, alerts: Alerts) -> None:
        self.alerts = alerts
        self._active: dict[str, bool] = {}
        self._last: dict[str, float] = {}

    def evaluate(self, source: str, stats: Stats, now: float) -> list[DeadLetterAlert]:
        """The alerts that ``stats`` raise at monotonic time ``now`` (none under cooldown)."""
        out = []
        for metric, threshold in self.alerts.thresholds():
            value = float(stats.parked if metric == "parked" else stats.arrival_rate)
            above = value > threshold
            active = self._active.get(metric, False)
            if above:
                last = self._last.get(metric)
                if active and last is not None and now - last < self.alerts.cooldown:
                    continue
                self._active[metric], self._last[metric] = True, now
                out.append(
                    DeadLetterAlert(source, stats.time, "ok", "alert", "", metric, value, threshold)
                )
            elif active:
                self._active[metric] = False
                out.append(
                    DeadLetterAlert(source, stats.time, "alert", "ok", "", metric, value, threshold)
                )
        return out
