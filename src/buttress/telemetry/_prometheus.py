"""``ButtressCollector`` and ``render``: a registry's policies as Prometheus metrics, read at
scrape time.

Policies keep plain integer counters; nothing is pushed on the hot path and nothing is registered
at import. At each scrape the collector walks the buttress ``Registry`` (every registered policy,
plus the policies of registered pipelines that are not registered themselves), takes each one's
snapshot and turns it into metric families (``_families.py``, one function per policy kind).

Breakers do not count transitions by (from, to), so a collector installs an event listener that
does, from its creation until ``close()``. ``render()`` keeps one such listener per buttress
registry, started by its first call and removed when the registry is garbage-collected.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

from buttress import events
from buttress._redact import redact
from buttress.errors import ConfigError
from buttress.registry import Registry
from buttress.telemetry._exposition import number, write
from buttress.telemetry._families import KINDS, Family, Scrape, health_checks

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

    from buttress.health import Check, CheckResult

__all__ = ["ButtressCollector", "HealthSource", "render"]

_PREFIX = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


class HealthSource(Protocol):
    """What the collector needs from a ``HealthRegistry``: each check and its last result."""

    def last_results(self) -> Sequence[tuple[Check, CheckResult | None]]:
        """Every check with its last result (None when it never ran), without running any."""
        ...


class TransitionCounter:
    """An event listener counting ``BreakerStateChanged`` events by (source, old, new)."""

    __slots__ = ("__weakref__", "_counts", "_lock")

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()

    def __call__(self, event: events.Event) -> None:
        if isinstance(event, events.BreakerStateChanged):
            key = (event.source, event.old, event.new)
            with self._lock:
                self._counts[key] = self._counts.get(key, 0) + 1

    def counts(self) -> list[tuple[tuple[str, str, str], int]]:
        """The counts so far, sorted by key."""
        with self._lock:
            return sorted(self._counts.items())


class ButtressCollector:
    """A ``prometheus_client`` collector for the policies of a buttress ``Registry``.

    ``ButtressCollector(registry, *, health=None, prefix="buttress")``. Every scrape reads the
    policies' counters and states as they are then; ``health`` (a ``HealthRegistry``) adds each
    check's last result, without running checks. Creating it starts counting breaker
    transitions (an event listener); ``close()`` stops that and unregisters it from the
    ``CollectorRegistry`` objects it was registered with. Nothing is registered until
    ``register()``.

    >>> from buttress import Registry
    >>> from prometheus_client import CollectorRegistry, generate_latest
    >>> registry = Registry()
    >>> _ = registry.breaker("db")
    >>> with ButtressCollector(registry) as collector:
    ...     scrape = generate_latest(collector.register(CollectorRegistry())).decode()
    >>> 'buttress_circuit_breaker_state{name="db",state="closed"} 1.0' in scrape
    True
    """

    def __init__(
        self,
        registry: Registry,
        *,
        health: HealthSource | None = None,
        prefix: str = "buttress",
    ) -> None:
        if not isinstance(registry, Registry):
            raise ConfigError("registry", registry, "must be a buttress Registry")
        self.registry = registry
        self.health = health
        self.prefix = _check_prefix(prefix)
        self._transitions = TransitionCounter()
        self._registered: list[CollectorRegistry] = []
        self._closed = False
        events.add_listener(self._transitions, kinds={events.BreakerStateChanged.kind})

    def families(self) -> list[Family]:
        """This scrape's metric families as plain rows (empty families left out)."""
        return scrape(self.registry, self.health, self._transitions, self.prefix)

    def collect(self) -> Iterator[Metric]:
        """The metric families for ``prometheus_client`` (the custom collector protocol)."""
        return _to_metrics(self.families())

    def describe(self) -> Iterator[Metric]:
        """Every family this collector can expose, without samples, so that a
        ``CollectorRegistry`` can refuse a second collector with the same names."""
        return _to_metrics(catalogue(self.prefix, health=self.health is not None))

    def render(self) -> bytes:
        """This scrape in the Prometheus text format (see ``CONTENT_TYPE``)."""
        return write(self.families())

    def register(self, collector_registry: CollectorRegistry | None = None) -> CollectorRegistry:
        """Register with ``collector_registry`` (default: ``prometheus_client.REGISTRY``);
        returns it. Raises ``ValueError`` if its metric names are taken there already."""
        if collector_registry is None:
            from prometheus_client import REGISTRY

            collector_registry = REGISTRY
        collector_registry.register(self)
        self._registered.append(collector_registry)
        return collector_registry

    def close(self) -> None:
        """Stop counting transitions and unregister everywhere; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        events.remove_listener(self._transitions)
        registered, self._registered = self._registered, []
        for collector_registry in registered:
            try:
                collector_registry.unregister(self)
            except KeyError:  # unregistered by hand already
                pass

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<ButtressCollector prefix={self.prefix!r}{state}>"


_shared: weakref.WeakKeyDictionary[Registry, TransitionCounter] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def render(
    registry: Registry, health: HealthSource | None = None, *, prefix: str = "buttress"
) -> bytes:
    """The policies of ``registry`` (and ``health``'s last results) in the Prometheus text
    format, for a ``/metrics`` endpoint; serve it with ``CONTENT_TYPE``.

    Breaker transitions are counted from the first call for this registry on: call it once
    at startup (or hold a ``ButtressCollector``) so that none are missed.
    """
    if not isinstance(registry, Registry):
        raise ConfigError("registry", registry, "must be a buttress Registry")
    return write(scrape(registry, health, _counter_for(registry), _check_prefix(prefix)))


def _counter_for(registry: Registry) -> TransitionCounter:
    with _shared_lock:
        counter = _shared.get(registry)
        if counter is None:
            counter = _shared[registry] = TransitionCounter()
            events.add_listener(counter, kinds={events.BreakerStateChanged.kind})
            # The finalizer holds the counter, not the registry.
            weakref.finalize(registry, events.remove_listener, counter)
    return counter


# -- one scrape -----------------------------------------------------------------------------------


def scrape(
    registry: Registry,
    health: HealthSource | None,
    transitions: TransitionCounter,
    prefix: str,
) -> list[Family]:
    """Every non-empty family of ``registry``'s policies and ``health``'s checks, read now."""
    found = gather(registry)
    context = Scrape(prefix, transitions.counts)
    families: list[Family] = []
    for kind in KINDS:
        items = found[kind.name]
        if items:
            families.extend(kind.families(items, context))
    if health is not None:
        checks = _labelled_checks(health)
        if checks:
            families.extend(health_checks(checks, context))
    return [family for family in merge(families) if family.rows or family.histograms]


def merge(families: list[Family]) -> list[Family]:
    """Families of one name fed by several kinds (``load_shed_total``) as one family, in the
    place of the first; rows with the same labels are added up (one series each)."""
    merged: dict[str, Family] = {}
    for family in families:
        first = merged.setdefault(family.name, family)
        if first is not family:
            totals = dict(first.rows)
            for labels, value in family.rows:
                totals[labels] = totals.get(labels, 0) + value
            first.rows[:] = list(totals.items())
    return list(merged.values())


def catalogue(prefix: str, *, health: bool) -> list[Family]:
    """Every family that can be exposed (with ``health``: the health check families too),
    without rows."""
    context = Scrape(prefix, list)
    families: list[Family] = []
    for kind in KINDS:
        families.extend(kind.families((), context))
    if health:
        families.extend(health_checks((), context))
    return merge(families)


def gather(registry: Registry) -> dict[str, list[tuple[str, Any]]]:
    """``(label, policy)`` pairs per kind: registered policies by name, then the members of
    registered pipelines that are not registered themselves. Labels are redacted names; when
    two objects of a kind share a label, the first one is kept (duplicate series are invalid)."""
    found: dict[str, list[tuple[str, Any]]] = {}
    taken: dict[str, set[str]] = {}
    known: set[int] = set()
    for kind in KINDS:
        items = found[kind.name] = []
        labels = taken[kind.name] = set()
        for policy in registry.of_kind(kind.name):
            _keep(policy, items, labels, known)
    for pipeline in registry.pipelines():
        for policy in pipeline.policies:
            if id(policy) in known:
                continue
            for kind in KINDS:
                if kind.type is not None and isinstance(policy, kind.type):
                    _keep(policy, found[kind.name], taken[kind.name], known)
                    break
    return found


def _keep(policy: Any, items: list[tuple[str, Any]], labels: set[str], known: set[int]) -> None:
    known.add(id(policy))
    label = redact(getattr(policy, "name", "default"))  # attached objects may have none
    if label not in labels:
        labels.add(label)
        items.append((label, policy))


def _labelled_checks(health: HealthSource) -> list[tuple[str, Check, CheckResult | None]]:
    checks: list[tuple[str, Check, CheckResult | None]] = []
    labels: set[str] = set()
    for check, result in health.last_results():
        label = redact(check.name)
        if label not in labels:
            labels.add(label)
            checks.append((label, check, result))
    return checks


def _to_metrics(families: list[Family]) -> Iterator[Metric]:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    for family in families:
        metric: CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily
        if family.type == "histogram":
            metric = HistogramMetricFamily(family.name, family.help, labels=family.labels)
            for values, buckets, total in family.histograms:
                ladder = [(number(bound), count) for bound, count in buckets]
                metric.add_metric(list(values), ladder, sum_value=total)
            yield metric
            continue
        if family.type == "counter":
            metric = CounterMetricFamily(family.name, family.help, labels=family.labels)
        else:
            metric = GaugeMetricFamily(family.name, family.help, labels=family.labels)
        for values, value in family.rows:
            metric.add_metric(values, value)
        yield metric


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise ConfigError("prefix", prefix, "must be a Prometheus metric name like 'buttress'")
    return prefix
