"""``Client``, ``AsyncClient`` and ``wrap``: httpx clients whose transports are resilient."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Unpack, cast

import httpx

from buttress._clock import Clock
from buttress.errors import ConfigError
from buttress.http._host import check_sync
from buttress.http._resilience import ClientResilience, Policies, ResilienceOptions
from buttress.http._stats import HealthThresholds, HostStats
from buttress.http._transport import AsyncResilientTransport, ResilientTransport

if TYPE_CHECKING:
    from buttress.registry import Registry

__all__ = ["AsyncClient", "Client", "resilience_of", "wrap"]


def _install(client: httpx.Client | httpx.AsyncClient, resilience: ClientResilience) -> None:
    """Put a resilient transport around the client's transport and each mounted one."""
    transport = getattr(client, "_transport", None)
    mounts = getattr(client, "_mounts", None)
    if transport is None or not isinstance(mounts, dict):
        raise ConfigError(
            "client", type(client).__name__, "must be an httpx.Client or httpx.AsyncClient"
        )
    if isinstance(transport, ResilientTransport | AsyncResilientTransport):
        raise ConfigError("client", client, "is already wrapped by buttress.http")
    if isinstance(client, httpx.AsyncClient):
        client._transport = AsyncResilientTransport(transport, resilience=resilience)
        for pattern, mounted in list(client._mounts.items()):
            if mounted is not None:
                client._mounts[pattern] = AsyncResilientTransport(mounted, resilience=resilience)
        return
    check_sync(resilience.table.named())
    client._transport = ResilientTransport(transport, resilience=resilience)
    for pattern, sync_mounted in list(client._mounts.items()):
        if sync_mounted is not None:
            client._mounts[pattern] = ResilientTransport(sync_mounted, resilience=resilience)


def wrap(
    client: httpx.Client | httpx.AsyncClient,
    *,
    resilience: ClientResilience | None = None,
    **options: Unpack[ResilienceOptions],
) -> ClientResilience:
    """Make an existing ``httpx.Client`` or ``httpx.AsyncClient`` resilient, in place.

    Its transport (and each mounted one, such as a proxy's) is wrapped with the per-host
    pipelines of ``resilience``, or of a new ``ClientResilience`` built from ``options``
    (``policies``, ``name``, ``registry``, ``clock``...); returns it, for its statistics.
    Wrapping a client twice raises ConfigError.
    """
    if not isinstance(client, httpx.Client | httpx.AsyncClient):
        raise ConfigError("client", client, "must be an httpx.Client or httpx.AsyncClient")
    registry = options.pop("registry", None)
    if resilience is None:
        resilience = ClientResilience(**options)
    elif options:
        extra: dict[str, object] = dict(options)
        key = sorted(extra)[0]
        raise ConfigError(key, extra[key], "cannot be given with resilience= (it has its own)")
    _install(client, resilience)
    if registry is not None:
        resilience.register(registry)
    return resilience


def resilience_of(client: httpx.Client | httpx.AsyncClient) -> ClientResilience:
    """The ``ClientResilience`` of a client made by ``Client``, ``AsyncClient`` or ``wrap``."""
    transport = getattr(client, "_transport", None)
    if isinstance(transport, ResilientTransport | AsyncResilientTransport):
        return transport.resilience
    raise ConfigError("client", client, "is not wrapped by buttress.http")


class _Resilient:
    """What ``Client`` and ``AsyncClient`` add to their httpx class: a ``ClientResilience``
    built from the keywords below, installed around the transports httpx builds."""

    resilience: ClientResilience

    def __init__(
        self,
        *,
        policies: Policies | None = None,
        name: str = "http",
        health: HealthThresholds | None = None,
        window: int = 256,
        max_hosts: int = 100,
        registry: Registry | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        **kwargs: Any,
    ) -> None:
        resilience = ClientResilience(
            policies,
            name=name,
            health=health,
            window=window,
            max_hosts=max_hosts,
            clock=clock,
            rng=rng,
        )
        client = cast("httpx.Client | httpx.AsyncClient", self)
        if isinstance(client, httpx.Client):
            check_sync(resilience.table.named())  # before httpx builds anything
        super().__init__(**kwargs)  # httpx's, next in the MRO
        _install(client, resilience)
        self.resilience = resilience
        if registry is not None:
            resilience.register(registry)

    def snapshot(self) -> list[HostStats]:
        """Every host's statistics (see ``ClientResilience.snapshot``)."""
        return self.resilience.snapshot()


class Client(_Resilient, httpx.Client):
    """An ``httpx.Client`` with a per-host pipeline: timeouts, retries honouring Retry-After,
    a circuit breaker and a rate limit per host (see ``HostPolicy``).

    ``Client(*, policies=None, name="http", health=None, window=256, max_hosts=100,
    registry=None, clock=None, rng=None, **httpx_options)``; the other keywords go to
    ``httpx.Client`` (``base_url``, ``headers``, ``transport``...). ``resilience`` holds the
    policies and statistics: ``client.snapshot()`` is ``client.resilience.snapshot()``.
    """


class AsyncClient(_Resilient, httpx.AsyncClient):
    """The asyncio ``Client``: an ``httpx.AsyncClient`` with the same per-host pipeline, plus
    hedging of GET and HEAD requests where a policy sets ``hedge_delay``."""
