"""``[fleet]``: the store through which a service's processes act as one (docs/fleet.md).

.. code-block:: toml

    [fleet]
    store = "redis://:${REDIS_PASSWORD}@cache:6379/0"   # a secret: the password is masked
    prefix = "buttress:"      # this service's keys in the store
    sync_interval = 0.25      # shared breakers flush their outcomes this often (seconds)
    staleness = 1.0           # and refresh the fleet's state at least this often
    lock_ttl = 15.0           # the scheduler's leader lease

    [breakers.payments]
    shared = true             # one breaker for the fleet

With the table, breakers with ``shared = true`` are built with ``shared=`` the fleet's store,
rate limits with ``store = "fleet"`` keep their state there, and ``buttress serve`` runs each
periodic job on one process of the fleet (``Scheduler(store=...)``, a leader lock).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import unquote, urlsplit

from buttress import _options as opt
from buttress._redact import add_secret, redact
from buttress.config._errors import Problems
from buttress.errors import ConfigError
from buttress.stores import DEFAULT_PREFIX, KeyLayout

if TYPE_CHECKING:
    from buttress._clock import Clock
    from buttress.breaker import CircuitBreaker
    from buttress.ops.scheduler import Scheduler
    from buttress.registry import Registry
    from buttress.stores import AsyncStore, Store

__all__ = ["FLEET_KEYS", "Fleet", "FleetSettings", "build_breaker", "build_fleet", "render_fleet"]

T = TypeVar("T")

FLEET_KEYS: Final = ("store", "prefix", "sync_interval", "staleness", "lock_ttl")
NEEDS_FLEET: Final = 'needs the [fleet] store: a valid [fleet] table, store = "redis://host:6379/0"'


@dataclass(frozen=True, slots=True, repr=False)
class FleetSettings:
    """``[fleet]``: ``store`` (a store URL: ``redis://`` for a fleet of hosts, ``sqlite:///``
    for the processes of one host, ``memory://`` for tests; its password is a secret),
    ``prefix="buttress:"`` (the keys' prefix), ``sync_interval=0.25`` and ``staleness=1.0``
    (shared breakers), ``lock_ttl=15.0`` (the scheduler's leader lease), all in seconds."""

    store: str
    prefix: str = DEFAULT_PREFIX
    sync_interval: float = 0.25
    staleness: float = 1.0
    lock_ttl: float = 15.0

    def __post_init__(self) -> None:
        from buttress.stores._url import _parse

        try:
            _parse(self.store)
        except ConfigError as exc:
            raise ConfigError("store", exc.value, exc.expected) from None
        if not isinstance(self.prefix, str) or not self.prefix:
            raise ConfigError("prefix", self.prefix, "must be a non-empty string")
        KeyLayout(self.prefix)  # no braces: they would move the Redis Cluster hash tag
        for name in ("sync_interval", "staleness", "lock_ttl"):
            object.__setattr__(self, name, opt.duration(name, getattr(self, name)))

    def __repr__(self) -> str:
        return (
            f"FleetSettings(store={redact(self.store)!r}, prefix={self.prefix!r}, "
            f"sync_interval={self.sync_interval!r}, staleness={self.staleness!r}, "
            f"lock_ttl={self.lock_ttl!r})"
        )


class Fleet:
    """The live side of ``[fleet]``: the stores opened from ``settings`` and what uses them.

    ``store()`` is the sync store every shared breaker and fleet rate limit of the
    configuration uses (opened on first use; nothing connects before the first operation);
    ``scheduler(**options)`` is a ``Scheduler`` electing its leader on a new asyncio store.
    ``close()`` closes the shared breakers and rate limiters and the sync store; ``await
    aclose()`` also closes the schedulers' stores (call it after the schedulers stopped).
    """

    def __init__(self, settings: FleetSettings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self._clock = clock
        self._store: Store | None = None
        self._async: list[AsyncStore] = []
        self._shared: list[object] = []  # shared breakers and fleet rate limiters

    def store(self) -> Store:
        """The fleet's sync store (one per configuration, opened on first use)."""
        if self._store is None:
            from buttress.stores import store_from_url

            url, prefix = self.settings.store, self.settings.prefix
            self._store = store_from_url(url, prefix=prefix, clock=self._clock)
        return self._store

    def async_store(self) -> AsyncStore:
        """A new asyncio store on the fleet's URL, closed by ``aclose()``."""
        from buttress.stores import async_store_from_url

        url, prefix = self.settings.store, self.settings.prefix
        store = async_store_from_url(url, prefix=prefix, clock=self._clock)
        self._async.append(store)
        return store

    def scheduler(self, **options: Any) -> Scheduler:
        """A ``Scheduler`` that runs each periodic job on one process of the fleet (its lock
        lease is ``lock_ttl``); ``options`` go to ``Scheduler`` (``clock``, ``lock_name``...)."""
        from buttress.ops.scheduler import Scheduler

        options.setdefault("lock_ttl", self.settings.lock_ttl)
        return Scheduler(store=self.async_store(), **options)

    def track(self, shared: T) -> T:
        """Remember an object built on ``store()`` (a shared breaker, a fleet rate limiter):
        ``close()`` closes it (its syncing, its connections) before the store."""
        if all(known is not shared for known in self._shared):  # built again: the same one
            self._shared.append(shared)
        return shared

    def close(self) -> None:
        """Close the shared breakers and fleet rate limiters, then the sync store; idempotent."""
        shared, self._shared = self._shared, []
        for item in shared:
            close = getattr(item, "close", None)
            if callable(close):
                close()
        store, self._store = self._store, None
        if store is not None:
            store.close()

    async def aclose(self) -> None:
        """``close()`` from an event loop: also the fleet rate limiters' asyncio connections
        and the schedulers' stores made here."""
        for item in self._shared:
            aclose = getattr(item, "aclose", None)
            if callable(aclose):
                await aclose()
        stores, self._async = self._async, []
        for store in stores:
            await store.aclose()
        self.close()

    def __repr__(self) -> str:
        return f"Fleet({redact(self.settings.store)!r})"


def build_fleet(table: object, problems: Problems, clock: Clock | None = None) -> Fleet | None:
    """``[fleet]`` as a ``Fleet`` (None without the table, or after recording its problems)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        problems.add(("fleet",), "must be a table")
        return None
    options: dict[str, Any] = {}
    for key, value in table.items():
        if key not in FLEET_KEYS:
            problems.unknown(("fleet", key), FLEET_KEYS)
        else:
            options[key] = value
    url = options.get("store")
    if url is None:
        problems.add(("fleet", "store"), "is required (a store URL, e.g. redis://host:6379/0)")
        return None
    if isinstance(url, str):
        _keep_password_secret(url)
    failed = problems.failed_under(("fleet",))
    for _ in range(len(options) + 1):  # report every bad option, not only the first
        try:
            settings = FleetSettings(**options)
        except ConfigError as exc:
            problems.config_error(("fleet", exc.field), exc)
            failed = True
            if exc.field not in options:  # pragma: no cover - every field is an option
                return None
            if exc.field == "store":  # required: a stand-in lets the others be checked
                options["store"] = "memory://"
            else:
                del options[exc.field]
        else:
            return None if failed else Fleet(settings, clock=clock)
    return None  # pragma: no cover - every round removes or replaces an option


def _keep_password_secret(url: str) -> None:
    """Mask the URL's password wherever it may show (a driver's error message, a log line)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        add_secret(password)
        add_secret(unquote(password))


def render_fleet(settings: FleetSettings) -> dict[str, Any]:
    """``[fleet]`` as plain data (``Config.masked()`` masks the URL's password)."""
    return {
        "store": settings.store,
        "prefix": settings.prefix,
        "sync_interval": settings.sync_interval,
        "staleness": settings.staleness,
        "lock_ttl": settings.lock_ttl,
    }


def build_breaker(
    registry: Registry, name: str, options: dict[str, Any], fleet: Fleet | None
) -> CircuitBreaker:
    """``[breakers.<name>]``: with ``shared = true``, built on the fleet's store."""
    rest = dict(options)
    shared = rest.pop("shared", False)
    if not isinstance(shared, bool):
        raise ConfigError("shared", shared, "must be true or false")
    if not shared:
        return registry.breaker(name, **rest)
    if fleet is None:
        raise ConfigError("shared", True, NEEDS_FLEET)
    settings = fleet.settings
    breaker = registry.breaker(
        name,
        shared=fleet.store(),
        sync_interval=settings.sync_interval,
        staleness=settings.staleness,
        **rest,
    )
    return fleet.track(breaker)
