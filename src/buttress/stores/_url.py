"""Choose a backend by URL: ``memory://``, ``sqlite:///path`` or ``redis://host:6379/0``.

SQLite paths follow SQLAlchemy: what follows ``sqlite:///`` is the path, so
``sqlite:///state.db`` is relative to the working directory, ``sqlite:////var/lib/app.db`` is
absolute and ``sqlite:///:memory:`` is a private in-memory database. Redis URLs are redis-py's:
``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS, and
``unix://[[user]:password@]/path/to/socket[?db=N]``. A bad URL raises ``ConfigError`` naming the
field ``url`` with the password masked.
"""

from __future__ import annotations

import importlib.util
from urllib.parse import urlsplit

from buttress._clock import Clock
from buttress.errors import ConfigError
from buttress.stores._common import DEFAULT_PREFIX, mask_url, scrub
from buttress.stores._memory import AsyncMemoryStore, MemoryStore
from buttress.stores._protocols import AsyncStore, Store
from buttress.stores._sqlite import AsyncSQLiteStore, SQLiteStore

__all__ = ["async_store_from_url", "store_from_url"]

_FORMS = "memory://, sqlite:///path, redis://host:port/db, rediss://... or unix:///socket"
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


def _parse(url: object) -> tuple[str, str]:
    """The backend (``memory``, ``sqlite`` or ``redis``) and its argument (path or URL)."""
    if not isinstance(url, str):
        raise ConfigError("url", type(url).__name__, f"must be a store URL ({_FORMS})")
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator or not scheme:
        raise ConfigError("url", mask_url(url), f"must be a store URL ({_FORMS})")
    if scheme == "memory":
        if rest:
            raise ConfigError("url", mask_url(url), "memory:// takes no host, path or query")
        return "memory", ""
    if scheme == "sqlite":
        path = rest[1:] if rest.startswith("/") else ""
        if not path or "?" in path or "#" in path:
            raise ConfigError(
                "url",
                mask_url(url),
                "must be sqlite:///relative/path.db, sqlite:////absolute/path.db or"
                " sqlite:///:memory: (no query)",
            )
        return "sqlite", path
    if scheme in _REDIS_SCHEMES:
        try:
            urlsplit(url).port  # noqa: B018 (parsing it is the check)
        except ValueError as exc:
            reason = scrub(str(exc), url)
            raise ConfigError("url", mask_url(url), f"has a bad port ({reason})") from None
        if importlib.util.find_spec("redis") is None:
            raise ConfigError("url", mask_url(url), "needs redis-py: install buttress[redis]")
        return "redis", url
    raise ConfigError("url", mask_url(url), f"has an unknown scheme; use {_FORMS}")


def store_from_url(url: str, *, prefix: str = DEFAULT_PREFIX, clock: Clock | None = None) -> Store:
    """A sync ``Store`` for ``url``; keys go under ``prefix`` (default ``"buttress:"``).

    ``clock`` (default ``SystemClock()``) times expiry for memory (monotonic) and SQLite (wall
    clock); Redis expires keys on the server's own clock and does not read it. Nothing connects
    until the first operation.
    """
    kind, target = _parse(url)
    if kind == "memory":
        return MemoryStore(prefix=prefix, clock=clock)
    if kind == "sqlite":
        return SQLiteStore(target, prefix=prefix, clock=clock)
    from buttress.stores._redis import RedisStore

    return RedisStore(target, prefix=prefix)


def async_store_from_url(
    url: str, *, prefix: str = DEFAULT_PREFIX, clock: Clock | None = None
) -> AsyncStore:
    """An asyncio ``AsyncStore`` for ``url``; the same URLs and options as ``store_from_url``."""
    kind, target = _parse(url)
    if kind == "memory":
        return AsyncMemoryStore(prefix=prefix, clock=clock)
    if kind == "sqlite":
        return AsyncSQLiteStore(target, prefix=prefix, clock=clock)
    from buttress.stores._redis import AsyncRedisStore

    return AsyncRedisStore(target, prefix=prefix)
