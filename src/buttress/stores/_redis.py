"""``redis://``, ``rediss://`` (TLS) and ``unix://`` (a socket): redis-py with hiredis.

The sync (``redis.Redis``) and asyncio (``redis.asyncio.Redis``) flavours share everything but
the waiting: ``_Commands`` turns each operation into a ``_Call`` (the command, or a shipped Lua
script with its keys and arguments, and how to decode the reply), and each flavour only sends
it. Both use one key layout (``KeyLayout``) and one set of scripts (``_lua/cas.lua``,
``_lua/incr.lua``). Expiry is always set by the server (``PX``/``PEXPIRE``), on its own clock.

redis-py is imported when a store is built, never when buttress is imported. The client opens
connections on first use; ``timeout`` (default 5 s) bounds connecting and each reply; a failed
command is retried once at once (a pooled connection gone stale when Redis restarted), then
surfaces as ``StoreError``. ``client`` is the redis-py client, for what the protocols do not
cover (pub/sub, streams, pipelines); wrap such calls in ``with store.guard("operation"):``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar
from urllib.parse import urlsplit

from buttress._options import Duration, duration
from buttress.errors import ConfigError
from buttress.stores._common import (
    DEFAULT_PREFIX,
    KeyLayout,
    Value,
    as_bytes,
    check_amount,
    check_ttl,
    closed_error,
    mask_url,
    parse_counter,
    scrub,
    store_error,
    ttl_ms,
)
from buttress.stores._scripts import Script, load_script

if TYPE_CHECKING:
    import redis
    import redis.asyncio
    from redis.commands.core import AsyncScript
    from redis.commands.core import Script as SyncScript

__all__ = ["AsyncRedisStore", "RedisStore"]

T = TypeVar("T")
C = TypeVar("C", bound="redis.Redis | redis.asyncio.Redis")
_DB_PATH = re.compile(r"/?|/[0-9]+")
DEFAULT_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    """One round trip: ``words`` of a command, or ``script`` run on ``words`` as (key, *args)."""

    operation: str
    words: tuple[Any, ...]
    decode: Callable[[Any], T]
    script: Script | None = None


def _optional_bytes(raw: Any) -> bytes | None:
    return None if raw is None else bytes(raw)


def _nothing(raw: Any) -> None:
    return None


def _swapped(raw: Any) -> bool:
    return int(raw) == 1


def _positive(raw: Any) -> bool:
    return int(raw) > 0


def _seconds_left(raw: Any) -> float | None:
    millis = int(raw)
    if millis == -2:
        return None
    return math.inf if millis == -1 else millis / 1000.0


class _Commands:
    """Builds the ``_Call`` of every operation: the one definition both flavours send."""

    __slots__ = ("cas", "incr_script", "layout", "url")

    def __init__(self, layout: KeyLayout, url: str) -> None:
        self.layout = layout
        self.url = url
        self.cas = load_script("cas")
        self.incr_script = load_script("incr")

    def get(self, key: str) -> _Call[bytes | None]:
        return _Call("get", ("GET", self.layout.key(key)), _optional_bytes)

    def set(self, key: str, value: Value, ttl: Duration | None) -> _Call[None]:
        words = ("SET", self.layout.key(key), as_bytes(value), *_px(ttl))
        return _Call("set", words, _nothing)

    def set_if_absent(self, key: str, value: Value, ttl: Duration | None) -> _Call[bool]:
        words = ("SET", self.layout.key(key), as_bytes(value), *_px(ttl), "NX")
        return _Call("set_if_absent", words, bool)

    def compare_and_set(
        self, key: str, expected: Value | None, new: Value | None, ttl: Duration | None
    ) -> _Call[bool]:
        seconds = check_ttl(ttl)
        words = (
            self.layout.key(key),
            b"0" if expected is None else b"1",
            b"" if expected is None else as_bytes(expected, "expected"),
            b"0" if new is None else b"1",
            b"" if new is None else as_bytes(new, "new"),
            b"" if seconds is None else ttl_ms(seconds),
        )
        return _Call("compare_and_set", words, _swapped, self.cas)

    def delete(self, key: str) -> _Call[bool]:
        return _Call("delete", ("DEL", self.layout.key(key)), _positive)

    def ttl(self, key: str) -> _Call[float | None]:
        return _Call("ttl", ("PTTL", self.layout.key(key)), _seconds_left)

    def incr(self, key: str, amount: int, ttl: Duration | None) -> _Call[int]:
        full, step, seconds = self.layout.key(key), check_amount(amount), check_ttl(ttl)
        if seconds is None:
            return _Call("incr", ("INCRBY", full, step), int)
        return _Call("incr", (full, step, ttl_ms(seconds)), int, self.incr_script)

    def get_counter(self, key: str) -> _Call[int]:
        url = self.url
        return _Call(
            "get_counter",
            ("GET", self.layout.key(key)),
            lambda raw: parse_counter(raw, "get_counter", url),
        )


def _px(ttl: Duration | None) -> tuple[Any, ...]:
    seconds = check_ttl(ttl)
    return () if seconds is None else ("PX", ttl_ms(seconds))


class _RedisBase:
    """What both flavours share: URL checks, the layout, commands and error translation."""

    layout: KeyLayout

    def __init__(self, url: str, prefix: str, timeout: Duration) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - the test environment has redis
            raise ImportError("the Redis store needs redis-py: install buttress[redis]") from exc
        if not isinstance(url, str):
            raise ConfigError("url", type(url).__name__, "must be a redis URL string")
        self._url = url
        self.layout = KeyLayout(prefix)
        self._commands = _Commands(self.layout, url)
        self._timeout = duration("timeout", timeout)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self._closed = False

    def _options(self) -> dict[str, Any]:
        return {"socket_timeout": self._timeout, "socket_connect_timeout": self._timeout}

    def _from_url(self, factory: Callable[..., C], **options: Any) -> C:
        """The client for the URL; ConfigError for what redis-py would only find on connect."""
        try:
            parts = urlsplit(self._url)
            if parts.scheme.lower() != "unix" and not _DB_PATH.fullmatch(parts.path):
                raise ValueError("the path must be the database number, as in /0")
            client = factory(self._url, **self._options(), **options)
            # A throwaway connection object (no socket) checks the query's options now.
            pool = client.connection_pool
            pool.connection_class(**pool.connection_kwargs)
        except (ValueError, TypeError) as exc:
            reason = scrub(str(exc), self._url)
            raise ConfigError(
                "url", mask_url(self._url), f"must be a valid redis URL ({reason})"
            ) from None
        return client

    @property
    def url(self) -> str:
        """The store's URL with its password masked."""
        return mask_url(self._url)

    @contextmanager
    def guard(self, operation: str) -> Iterator[None]:
        """Turn redis-py errors raised inside into ``StoreError`` naming ``operation``."""
        if self._closed:
            raise closed_error(operation, self._url)
        try:
            yield
        except self._errors as exc:
            raise store_error(operation, self._url, exc) from exc

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, prefix={self.layout.prefix!r})"


class RedisStore(_RedisBase):
    """A ``Store`` on Redis through a sync ``redis.Redis`` client; also a ``ScriptStore``.

    ``RedisStore(url="redis://127.0.0.1:6379/0", *, prefix="buttress:", timeout=5.0)``.
    Thread-safe (redis-py's connection pool).
    """

    client: redis.Redis

    def __init__(
        self, url: str = DEFAULT_URL, *, prefix: str = DEFAULT_PREFIX, timeout: Duration = 5.0
    ) -> None:
        super().__init__(url, prefix, timeout)
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.client = self._from_url(redis.Redis.from_url, retry=Retry(NoBackoff(), 1))
        self._execute: Callable[..., Any] = self.client.execute_command
        self._scripts: dict[str, SyncScript] = {}

    def _script(self, script: Script) -> SyncScript:
        registered = self._scripts.get(script.sha)
        if registered is None:
            registered = self._scripts[script.sha] = self.client.register_script(script.source)
        return registered

    def _run(self, call: _Call[T]) -> T:
        with self.guard(call.operation):
            if call.script is None:
                raw = self._execute(*call.words)
            else:
                raw = self._script(call.script)(keys=call.words[:1], args=call.words[1:])
        return call.decode(raw)

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when it is absent or expired."""
        return self._run(self._commands.get(key))

    def set(self, key: str, value: Value, ttl: Duration | None = None) -> None:
        """Store ``value``; it expires after ``ttl`` seconds (None: never, and clears any ttl)."""
        self._run(self._commands.set(key, value, ttl))

    def set_if_absent(self, key: str, value: Value, ttl: Duration | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent (``SET NX PX``); True if it was stored."""
        return self._run(self._commands.set_if_absent(key, value, ttl))

    def compare_and_set(
        self, key: str, expected: Value | None, new: Value | None, ttl: Duration | None = None
    ) -> bool:
        """Replace the value if it equals ``expected`` (None: absent); ``new`` None deletes."""
        return self._run(self._commands.compare_and_set(key, expected, new, ttl))

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was there."""
        return self._run(self._commands.delete(key))

    def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires: None if absent, ``math.inf`` if it never expires."""
        return self._run(self._commands.ttl(key))

    def incr(self, key: str, amount: int = 1, ttl: Duration | None = None) -> int:
        """Add ``amount`` and return the new value; ``ttl`` applies to a counter without expiry."""
        return self._run(self._commands.incr(key, amount, ttl))

    def get_counter(self, key: str) -> int:
        """The counter's value; 0 when absent or expired."""
        return self._run(self._commands.get_counter(key))

    def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        """Run ``script`` (EVALSHA, loading it on NOSCRIPT) on full ``keys``; the raw reply."""
        with self.guard(f"script {script.name}"):
            return self._script(script)(keys=list(keys), args=list(args))

    def close(self) -> None:
        """Close the client and its connections; idempotent."""
        if not self._closed:
            self._closed = True
            self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncRedisStore(_RedisBase):
    """The asyncio flavour of ``RedisStore`` (same options) on ``redis.asyncio.Redis``.

    Use it from one event loop; ``aclose()`` it (or ``async with``) before the loop ends.
    """

    client: redis.asyncio.Redis

    def __init__(
        self, url: str = DEFAULT_URL, *, prefix: str = DEFAULT_PREFIX, timeout: Duration = 5.0
    ) -> None:
        super().__init__(url, prefix, timeout)
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.client = self._from_url(redis.asyncio.Redis.from_url, retry=Retry(NoBackoff(), 1))
        self._execute: Callable[..., Any] = self.client.execute_command
        self._scripts: dict[str, AsyncScript] = {}

    def _script(self, script: Script) -> AsyncScript:
        registered = self._scripts.get(script.sha)
        if registered is None:
            registered = self._scripts[script.sha] = self.client.register_script(script.source)
        return registered

    async def _run(self, call: _Call[T]) -> T:
        with self.guard(call.operation):
            if call.script is None:
                raw = await self._execute(*call.words)
            else:
                raw = await self._script(call.script)(keys=call.words[:1], args=call.words[1:])
        return call.decode(raw)

    async def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when it is absent or expired."""
        return await self._run(self._commands.get(key))

    async def set(self, key: str, value: Value, ttl: Duration | None = None) -> None:
        """Store ``value``; it expires after ``ttl`` seconds (None: never)."""
        await self._run(self._commands.set(key, value, ttl))

    async def set_if_absent(self, key: str, value: Value, ttl: Duration | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent; True if it was stored."""
        return await self._run(self._commands.set_if_absent(key, value, ttl))

    async def compare_and_set(
        self, key: str, expected: Value | None, new: Value | None, ttl: Duration | None = None
    ) -> bool:
        """Replace the value if it equals ``expected`` (None: absent); ``new`` None deletes."""
        return await self._run(self._commands.compare_and_set(key, expected, new, ttl))

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was there."""
        return await self._run(self._commands.delete(key))

    async def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires: None if absent, ``math.inf`` if it never expires."""
        return await self._run(self._commands.ttl(key))

    async def incr(self, key: str, amount: int = 1, ttl: Duration | None = None) -> int:
        """Add ``amount`` and return the new value; ``ttl`` applies to a counter without expiry."""
        return await self._run(self._commands.incr(key, amount, ttl))

    async def get_counter(self, key: str) -> int:
        """The counter's value; 0 when absent or expired."""
        return await self._run(self._commands.get_counter(key))

    async def run_script(
        self, script: Script, keys: Sequence[str], args: Sequence[Any] = ()
    ) -> Any:
        """Run ``script`` (EVALSHA, loading it on NOSCRIPT) on full ``keys``; the raw reply."""
        with self.guard(f"script {script.name}"):
            return await self._script(script)(keys=list(keys), args=list(args))

    async def aclose(self) -> None:
        """Close the client and its connections; idempotent."""
        if not self._closed:
            self._closed = True
            await self.client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
