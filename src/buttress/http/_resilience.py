"""``ClientResilience``: the per-host pipelines and statistics of one HTTP client.

A host's pipeline is built on its first request, from the policy its name matches. Hosts that no
policy names explicitly share one pipeline, ``(other)``, once there are ``max_hosts`` of them, so
a client that talks to ever new hosts (a crawler, user-supplied URLs) keeps bounded memory and a
bounded set of metric series.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

import httpx

from buttress import _options
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress.errors import ConfigError
from buttress.http._host import HostPipeline
from buttress.http._policy import HostPolicy, PolicyTable
from buttress.http._stats import HealthThresholds, HostStats

if TYPE_CHECKING:
    from buttress.registry import Registry

__all__ = ["OTHER", "ClientResilience", "ResilienceOptions"]

OTHER = "(other)"
"""The host name under which hosts beyond ``max_hosts`` are counted together."""

Policies = HostPolicy | Mapping[str, Any]
"""A policy for every host, or a mapping of host pattern to a policy or a dict of overrides."""


class ResilienceOptions(TypedDict, total=False):
    """The options of ``ClientResilience`` that the clients and transports pass on."""

    policies: Policies | None
    name: str
    health: HealthThresholds
    window: int
    max_hosts: int
    registry: Registry | None
    clock: Clock | None
    rng: random.Random | None


class ClientResilience:
    """The per-host policies of a client, the pipelines built from them, and their statistics.

    ``ClientResilience(policies=None, *, name="http", health=HealthThresholds(), window=256,
    max_hosts=100, registry=None, clock=None, rng=None)``. ``policies`` is one ``HostPolicy``
    for every host, or a mapping of host pattern (``"api.example.com"``, ``"host:8443"``,
    ``"*.example.com"``, ``"*"`` for the default) to a ``HostPolicy`` or a dict of fields
    overriding the default. ``window`` is how many recent requests per host the success rate
    and latency percentiles cover. With ``registry``, the client is registered as kind
    ``http_client`` under ``name``, and each host's breaker and rate limiter under
    ``"<name>:<host>"``.
    """

    registry_kind = "http_client"

    def __init__(
        self,
        policies: Policies | None = None,
        *,
        name: str = "http",
        health: HealthThresholds | None = None,
        window: int = 256,
        max_hosts: int = 100,
        registry: Registry | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("name", name, "must be a non-empty string")
        if health is not None and not isinstance(health, HealthThresholds):
            raise ConfigError("health", health, "must be a HealthThresholds")
        self.name = name
        self.table = PolicyTable(policies)
        self.thresholds = health if health is not None else HealthThresholds()
        self.window = _options.integer("window", window, minimum=1)
        self.max_hosts = _options.integer("max_hosts", max_hosts, minimum=1)
        self.registry: Registry | None = None
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._rng = rng
        self._lock = threading.Lock()
        self._hosts: dict[str, HostPipeline] = {}
        self._implicit = 0
        if registry is not None:
            self.register(registry)

    def register(self, registry: Registry) -> None:
        """Make this client and its hosts' breakers and limiters visible in ``registry``."""
        registry.attach(self.registry_kind, self, self.name)
        with self._lock:
            self.registry = registry
            pipelines = list(self._hosts.values())
        for pipeline in pipelines:
            self._register_host(pipeline)

    def _register_host(self, pipeline: HostPipeline) -> None:
        registry = self.registry
        if registry is None:
            return
        for policy in (pipeline.breaker, pipeline.limiter):
            if policy is None:
                continue
            try:
                registry.add(policy)
            except ConfigError:  # the name is taken by another object: the client's stats remain
                pass

    # -- the pipelines ---------------------------------------------------------------------------

    def pipeline(self, request: httpx.Request) -> HostPipeline:
        """The pipeline of the request's host (``host`` or ``host:port``), built on first sight."""
        netloc = request.url.netloc.decode("ascii")
        found = self._hosts.get(netloc)
        return found if found is not None else self._create(netloc)

    def _create(self, netloc: str) -> HostPipeline:
        policy, explicit = self.table.lookup(netloc)
        with self._lock:
            found = self._hosts.get(netloc)
            if found is not None:
                return found
            key = netloc
            if not explicit:
                if self._implicit >= self.max_hosts:
                    key = OTHER
                    found = self._hosts.get(OTHER)
                    if found is not None:
                        return found
                else:
                    self._implicit += 1
            created = HostPipeline(
                self.name, key, policy, clock=self._clock, rng=self._rng, window=self.window
            )
            self._hosts[key] = created
        self._register_host(created)
        return created

    def hosts(self) -> list[str]:
        """The hosts seen so far, sorted."""
        with self._lock:
            return sorted(self._hosts)

    def host(self, host: str) -> HostPipeline:
        """The pipeline of ``host`` (as in ``hosts()``); KeyError if it was never requested."""
        with self._lock:
            return self._hosts[host]

    # -- reading ---------------------------------------------------------------------------------

    def snapshot(self) -> list[HostStats]:
        """Every host's statistics, sorted by host (plain frozen dataclasses)."""
        with self._lock:
            pipelines = sorted(self._hosts.items())
        return [pipeline.stats(self.thresholds) for _, pipeline in pipelines]

    def status(self) -> tuple[str, list[HostStats]]:
        """The worst host status (``pass`` when no host was requested) and every host's stats."""
        stats = self.snapshot()
        worst = "pass"
        for item in stats:
            if item.status == "fail":
                worst = "fail"
            elif item.status == "warn" and worst == "pass":
                worst = "warn"
        return worst, stats

    def describe(self) -> dict[str, Any]:
        """The client's name, its policy table and the pipelines built so far, as plain data."""
        with self._lock:
            pipelines = sorted(self._hosts.items())
        return {
            "policy": "ClientResilience",
            "kind": self.registry_kind,
            "name": self.name,
            "policies": self.table.describe(),
            "hosts": {host: pipeline.describe() for host, pipeline in pipelines},
        }

    def __repr__(self) -> str:
        return f"ClientResilience({self.name!r}, hosts={len(self._hosts)})"
