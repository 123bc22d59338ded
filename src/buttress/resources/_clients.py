"""``ClientPool``: named httpx clients with a lifecycle (loaded only with httpx).

``pool.client(name, base_url=...)`` (or ``async_client``) returns the same client for a name until
the pool is closed. Each client's transport is wrapped by one that counts connection errors
(connect failures and timeouts, resets, a server hanging up before answering); after
``max_connection_errors`` in a row it replaces the inner transport, that is the client's
connection pool, with a fresh one and closes the old one. The client object stays the same, so
code holding it gets the new connections too (as .NET's ``IHttpClientFactory`` rotates
handlers under long-lived clients). ``close()`` closes the sync clients; ``aclose()`` closes all.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

import httpx

from buttress import _options as opt
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._redact import redact
from buttress.errors import ConfigError
from buttress.events import emit
from buttress.resources._events import ClientRecreated

__all__ = ["CONNECTION_ERRORS", "ClientPool", "ClientStats"]

CONNECTION_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.NetworkError,  # ConnectError, ReadError, WriteError, CloseError
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,  # e.g. a kept-alive connection the server had closed
)
"""What counts as a connection error; timeouts reading a slow answer do not."""

# Options httpx.Client ignores when given a transport: they go to the transport instead.
_TRANSPORT_KEYS = frozenset(
    {"verify", "cert", "http1", "http2", "limits", "retries", "local_address", "uds"}
)

T = TypeVar("T", httpx.BaseTransport, httpx.AsyncBaseTransport)


@dataclass(frozen=True, slots=True)
class ClientStats:
    """A pooled client's counters: ``requests`` sent, ``connection_errors`` in all and in a row
    (``consecutive_errors``), and how many times its connections were rebuilt (``recreated``)."""

    name: str
    kind: str
    base_url: str
    requests: int
    connection_errors: int
    consecutive_errors: int
    recreated: int


class _Counter(Generic[T]):
    """The state shared by a counting transport: the inner transport and the counts."""

    def __init__(self, name: str, make: Any, limit: int, clock: Clock) -> None:
        self.name = name
        self.make = make
        self.limit = limit
        self.clock = clock
        self.inner: T = make()
        self.lock = threading.Lock()
        self.requests = 0
        self.errors = 0
        self.consecutive = 0
        self.generation = 0

    def succeeded(self) -> None:
        with self.lock:
            self.requests += 1
            self.consecutive = 0

    def failed(self, inner: T, error: BaseException) -> T | None:
        """Count ``error`` raised by ``inner``; returns the transport to close when it was
        replaced (only the first caller to reach the limit on that transport replaces it)."""
        with self.lock:
            self.requests += 1
            self.errors += 1
            if inner is not self.inner:  # an old transport's late error
                return None
            self.consecutive += 1
            if self.consecutive < self.limit:
                return None
            errors, self.consecutive = self.consecutive, 0
            self.inner = self.make()
            self.generation += 1
            generation = self.generation
        text = redact(f"{type(error).__name__}: {error}")
        emit(ClientRecreated(self.name, self.clock.time(), errors, generation, text))
        return inner

    def rebuild(self) -> T:
        with self.lock:
            old, self.inner = self.inner, self.make()
            self.consecutive = 0
            self.generation += 1
            return old


class _CountingTransport(httpx.BaseTransport):
    def __init__(self, counter: _Counter[httpx.BaseTransport]) -> None:
        self.counter = counter

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        inner = self.counter.inner
        try:
            response = inner.handle_request(request)
        except CONNECTION_ERRORS as exc:
            old = self.counter.failed(inner, exc)
            if old is not None:
                old.close()
            raise
        self.counter.succeeded()
        return response

    def close(self) -> None:
        self.counter.inner.close()


class _AsyncCountingTransport(httpx.AsyncBaseTransport):
    def __init__(self, counter: _Counter[httpx.AsyncBaseTransport]) -> None:
        self.counter = counter

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        inner = self.counter.inner
        try:
            response = await inner.handle_async_request(request)
        except CONNECTION_ERRORS as exc:
            old = self.counter.failed(inner, exc)
            if old is not None:
                await old.aclose()
            raise
        self.counter.succeeded()
        return response

    async def aclose(self) -> None:
        await self.counter.inner.aclose()


class _Entry:
    __slots__ = ("base_url", "client", "counter", "kind", "name", "options")

    def __init__(
        self,
        name: str,
        kind: str,
        base_url: str,
        options: dict[str, Any],
        client: httpx.Client | httpx.AsyncClient,
        counter: _Counter[Any],
    ) -> None:
        self.name, self.kind, self.base_url, self.options = name, kind, base_url, options
        self.client, self.counter = client, counter


class ClientPool:
    """Named httpx clients, closed with the pool and with their connections rebuilt after
    ``max_connection_errors`` (default 5) connection errors in a row.

    ``defaults`` are httpx options given to every client (a client's own options win). Use the
    pool as a context manager (``with``/``async with``) or call ``close()``/``aclose()`` at
    shutdown, for example in the ops server's ``on_shutdown``.
    """

    def __init__(
        self,
        *,
        max_connection_errors: int = 5,
        defaults: dict[str, Any] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.max_connection_errors = opt.integer(
            "max_connection_errors", max_connection_errors, minimum=1
        )
        self.defaults = dict(defaults or {})
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._closed = False

    def client(self, name: str, *, base_url: str = "", **options: Any) -> httpx.Client:
        """The sync client ``name``, created on first use with ``base_url`` and httpx
        ``options``; a name containing ``://`` is its own base URL when none is given."""
        return cast(httpx.Client, self._get("sync", name, base_url, options).client)

    def async_client(self, name: str, *, base_url: str = "", **options: Any) -> httpx.AsyncClient:
        """The async client ``name``, like ``client``."""
        return cast(httpx.AsyncClient, self._get("async", name, base_url, options).client)

    def _get(self, kind: str, name: str, base_url: str, options: dict[str, Any]) -> _Entry:
        if not isinstance(name, str) or not name:
            raise ConfigError("name", name, "must be a non-empty string")
        if not base_url and "://" in name:
            base_url = name
        with self._lock:
            if self._closed:
                raise RuntimeError("the client pool is closed")
            entry = self._entries.get((kind, name))
            if entry is not None:
                if (base_url or options) and (base_url, options) != (entry.base_url, entry.options):
                    raise ConfigError(
                        f"clients.{name}", redact(base_url), "is already defined otherwise"
                    )
                return entry
            entry = self._build(kind, name, base_url, options)
            self._entries[(kind, name)] = entry
            return entry

    def _build(self, kind: str, name: str, base_url: str, options: dict[str, Any]) -> _Entry:
        merged = {**self.defaults, **options}
        if "transport" in merged or "mounts" in merged:
            raise ConfigError(f"clients.{name}", "transport", "is built by the pool")
        transport_options = {k: merged.pop(k) for k in list(merged) if k in _TRANSPORT_KEYS}
        limit = self.max_connection_errors
        client: httpx.Client | httpx.AsyncClient
        if kind == "sync":
            sync: _Counter[httpx.BaseTransport] = _Counter(
                name, lambda: httpx.HTTPTransport(**transport_options), limit, self._clock
            )
            counter: _Counter[Any] = sync
            client = httpx.Client(base_url=base_url, transport=_CountingTransport(sync), **merged)
        else:
            asynchronous: _Counter[httpx.AsyncBaseTransport] = _Counter(
                name, lambda: httpx.AsyncHTTPTransport(**transport_options), limit, self._clock
            )
            counter = asynchronous
            client = httpx.AsyncClient(
                base_url=base_url, transport=_AsyncCountingTransport(asynchronous), **merged
            )
        return _Entry(name, kind, base_url, dict(options), client, counter)

    def recreate(self, name: str) -> None:
        """Rebuild the connections of the sync client ``name`` now (KeyError if none)."""
        entry = self._entries[("sync", name)]
        entry.counter.rebuild().close()

    async def arecreate(self, name: str) -> None:
        """Rebuild the connections of the async client ``name`` now (KeyError if none)."""
        entry = self._entries[("async", name)]
        await entry.counter.rebuild().aclose()

    def stats(self) -> list[ClientStats]:
        """Every client's counters, sorted by name then kind."""
        with self._lock:
            entries = sorted(self._entries.items(), key=lambda item: (item[0][1], item[0][0]))
        rows = []
        for (kind, name), entry in entries:
            counter = entry.counter
            rows.append(
                ClientStats(
                    name,
                    kind,
                    redact(entry.base_url),
                    counter.requests,
                    counter.errors,
                    counter.consecutive,
                    counter.generation,
                )
            )
        return rows

    def _take(self, kinds: tuple[str, ...]) -> list[_Entry]:
        with self._lock:
            taken = [entry for key, entry in self._entries.items() if key[0] in kinds]
            for entry in taken:
                del self._entries[(entry.kind, entry.name)]
            return taken

    def close(self) -> None:
        """Close the sync clients and refuse new ones (async clients need ``aclose()``)."""
        with self._lock:
            self._closed = True
        for entry in self._take(("sync",)):
            cast(httpx.Client, entry.client).close()

    async def aclose(self) -> None:
        """Close every client, sync and async, and refuse new ones."""
        with self._lock:
            self._closed = True
        for entry in self._take(("sync", "async")):
            if isinstance(entry.client, httpx.AsyncClient):
                await entry.client.aclose()
            else:
                entry.client.close()

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> ClientPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"ClientPool({len(self._entries)} clients)"
