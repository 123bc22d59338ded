"""The httpx transports: each request goes through its host's pipeline, then the wrapped one."""

from __future__ import annotations

from types import TracebackType
from typing import Self, Unpack

import httpx

from buttress.errors import ConfigError
from buttress.http._host import check_sync
from buttress.http._resilience import ClientResilience, ResilienceOptions

__all__ = ["AsyncResilientTransport", "ResilientTransport"]


def _resilience(
    resilience: ClientResilience | None, options: ResilienceOptions
) -> ClientResilience:
    if resilience is None:
        return ClientResilience(**options)
    if not isinstance(resilience, ClientResilience):
        raise ConfigError("resilience", resilience, "must be a ClientResilience")
    if options:
        extra: dict[str, object] = dict(options)
        key = sorted(extra)[0]
        raise ConfigError(key, extra[key], "cannot be given with resilience= (it has its own)")
    return resilience


class ResilientTransport(httpx.BaseTransport):
    """An httpx transport applying a per-host pipeline around ``transport`` (default
    ``httpx.HTTPTransport()``): timeouts, retries, a breaker and a rate limit per host.

    ``ResilientTransport(transport=None, *, resilience=None, **options)``: ``options`` are
    those of ``ClientResilience`` (``policies``, ``name``, ``registry``, ``clock``...), or pass
    a ``resilience`` to share. Hedging needs the async transport (ConfigError here).
    """

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        *,
        resilience: ClientResilience | None = None,
        **options: Unpack[ResilienceOptions],
    ) -> None:
        if transport is not None and not isinstance(transport, httpx.BaseTransport):
            raise ConfigError("transport", transport, "must be an httpx.BaseTransport")
        self.resilience = _resilience(resilience, options)
        check_sync(self.resilience.table.named())
        self.transport = httpx.HTTPTransport() if transport is None else transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` under its host's policies."""
        return self.resilience.pipeline(request).handle(self.transport, request)

    def close(self) -> None:
        """Close the wrapped transport."""
        self.transport.close()

    def __enter__(self) -> Self:
        self.transport.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self.transport.__exit__(exc_type, exc_value, traceback)

    def __repr__(self) -> str:
        return f"ResilientTransport({self.resilience.name!r}, {self.transport!r})"


class AsyncResilientTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of ``ResilientTransport`` (default ``httpx.AsyncHTTPTransport()``);
    hedging of GET and HEAD requests is available here."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        resilience: ClientResilience | None = None,
        **options: Unpack[ResilienceOptions],
    ) -> None:
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            raise ConfigError("transport", transport, "must be an httpx.AsyncBaseTransport")
        self.resilience = _resilience(resilience, options)
        self.transport = httpx.AsyncHTTPTransport() if transport is None else transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` under its host's policies."""
        return await self.resilience.pipeline(request).ahandle(self.transport, request)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.transport.aclose()

    async def __aenter__(self) -> Self:
        await self.transport.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.transport.__aexit__(exc_type, exc_value, traceback)

    def __repr__(self) -> str:
        return f"AsyncResilientTransport({self.resilience.name!r}, {self.transport!r})"
