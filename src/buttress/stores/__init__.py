"""State stores: small capability protocols, three backends, chosen by URL.

>>> from buttress.stores import store_from_url
>>> with store_from_url("memory://") as store:
...     store.set_if_absent("leader", "host-a", ttl=10.0), store.incr("hits"), store.get("leader")
(True, 1, b'host-a')

Capabilities (each also as an asyncio ``Async...`` protocol with the same methods):
``KeyValueStore`` (``get``, ``set``, ``set_if_absent``, ``compare_and_set``, ``delete``,
``ttl``), ``CounterStore`` (``incr``, ``get_counter``), ``Store`` (both, plus ``close`` and the
context manager) and the Redis-only ``ScriptStore`` (``run_script`` of a shipped Lua script).

Backends: ``memory://`` (``MemoryStore``), ``sqlite:///path.db`` (``SQLiteStore``, several
processes on one host) and ``redis://host:6379/0`` (``RedisStore``; also ``rediss://`` and
``unix://``; needs ``buttress[redis]``). ``store_from_url`` and ``async_store_from_url`` pick one.

Keys: every backend stores logical key ``k`` as ``<prefix>{k}`` (``KeyLayout``); the braces are
a Redis Cluster hash tag, so keys derived from one logical key (``layout.key(k, "part")``) share
a slot and one script may touch them all.
"""

from __future__ import annotations

from buttress.stores._common import DEFAULT_PREFIX, KeyLayout, Value
from buttress.stores._memory import AsyncMemoryStore, MemoryStore
from buttress.stores._protocols import (
    AsyncCounterStore,
    AsyncKeyValueStore,
    AsyncScriptStore,
    AsyncStore,
    CounterStore,
    KeyValueStore,
    ScriptStore,
    Store,
)
from buttress.stores._redis import AsyncRedisStore, RedisStore
from buttress.stores._scripts import Script, load_script
from buttress.stores._sqlite import AsyncSQLiteStore, SQLiteStore
from buttress.stores._url import async_store_from_url, store_from_url

__all__ = [
    "DEFAULT_PREFIX",
    "AsyncCounterStore",
    "AsyncKeyValueStore",
    "AsyncMemoryStore",
    "AsyncRedisStore",
    "AsyncSQLiteStore",
    "AsyncScriptStore",
    "AsyncStore",
    "CounterStore",
    "KeyLayout",
    "KeyValueStore",
    "MemoryStore",
    "RedisStore",
    "SQLiteStore",
    "Script",
    "ScriptStore",
    "Store",
    "Value",
    "async_store_from_url",
    "load_script",
    "store_from_url",
]
