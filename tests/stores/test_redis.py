"""The Redis backend beyond the contract: failures, key layout on the server, Lua scripts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from importlib import resources

import pytest

from buttress.errors import StoreError
from buttress.stores import (
    AsyncRedisStore,
    AsyncScriptStore,
    RedisStore,
    Script,
    ScriptStore,
    load_script,
    store_from_url,
)
from tests.servers import SilentServer, stopped_port
from tests.stores.conftest import delete_redis_keys, unique_prefix

SECRET = "s3cret"


@pytest.fixture
def redis_store(live_redis_url: str):
    """A sync RedisStore on the test server with a unique prefix; keys deleted afterwards."""
    store = RedisStore(live_redis_url, prefix=unique_prefix())
    yield store
    store.close()
    delete_redis_keys(live_redis_url, store.layout.prefix)


def assert_masked(error: StoreError, operation: str, address: str) -> None:
    """The message names the operation and the address, and masks the password."""
    text = str(error)
    assert operation in text
    assert address in text
    assert "***" in text
    assert SECRET not in text


@pytest.mark.parametrize("operation", ["get", "set", "compare_and_set", "incr"])
def test_dead_port_raises_store_error_with_password_masked(operation: str) -> None:
    """Every operation on a port where nothing listens fails fast with a masked StoreError."""
    port = stopped_port()
    calls = {
        "get": lambda s: s.get("k"),
        "set": lambda s: s.set("k", "v"),
        "compare_and_set": lambda s: s.compare_and_set("k", None, "v"),
        "incr": lambda s: s.incr("k", 1, ttl=5),
    }
    with store_from_url(f"redis://:{SECRET}@127.0.0.1:{port}/0") as store:
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            calls[operation](store)
    assert time.monotonic() - started < 2
    assert_masked(caught.value, operation, f"127.0.0.1:{port}")
    assert SECRET not in repr(store)


async def test_dead_port_raises_store_error_async() -> None:
    """The asyncio flavour fails the same way, password masked."""
    port = stopped_port()
    async with AsyncRedisStore(f"redis://:{SECRET}@127.0.0.1:{port}/0") as store:
        with pytest.raises(StoreError) as caught:
            await store.incr("k")
    assert_masked(caught.value, "incr", f"127.0.0.1:{port}")


def test_dead_unix_socket_raises_store_error(tmp_path) -> None:
    """unix:// URLs are accepted; a missing socket is a masked StoreError."""
    url = f"unix://:{SECRET}@{tmp_path}/redis.sock?db=0"
    with store_from_url(url) as store, pytest.raises(StoreError) as caught:
        store.get("k")
    assert_masked(caught.value, "get", "redis.sock")


def test_a_server_that_never_answers_times_out() -> None:
    """``timeout`` bounds each reply: a silent server gives StoreError, not a hang."""
    with (
        SilentServer() as server,
        RedisStore(f"redis://127.0.0.1:{server.port}/0", timeout=0.1) as store,
    ):
        started = time.monotonic()
        with pytest.raises(StoreError, match="get failed"):
            store.get("k")
    assert time.monotonic() - started < 1.5


def test_keys_on_the_server_follow_the_layout(redis_store: RedisStore) -> None:
    """Logical key k is stored as <prefix>{k}: visible to any Redis client under that name."""
    from redis.crc import key_slot

    redis_store.set("breaker:db", "open")
    full = f"{redis_store.layout.prefix}{{breaker:db}}"
    assert redis_store.client.get(full) == b"open"
    derived = redis_store.layout.key("breaker:db", "bucket", "17")
    assert derived == f"{full}:bucket:17"
    assert key_slot(derived.encode()) == key_slot(full.encode()) == key_slot(b"breaker:db")
    for hostile in ("}x", "a}b", "{a}", "%7D"):  # untrusted keys cannot move the hash tag
        base = redis_store.layout.key(hostile)
        assert key_slot(redis_store.layout.key(hostile, "part").encode()) == key_slot(base.encode())


def test_run_script_loads_an_unknown_script_and_reads_server_time(
    redis_store: RedisStore,
) -> None:
    """A script new to the server is loaded on NOSCRIPT; the prelude's now_ms() is server TIME."""
    body = f"-- {uuid.uuid4()}\nredis.call('SET', KEYS[1], ARGV[1])\nreturn now_ms()\n"
    script = Script.from_source("test_now", body)
    assert redis_store.client.script_exists(script.sha) == [False]
    key = redis_store.layout.key("probe")
    now_ms = redis_store.run_script(script, [key], ["set-by-script"])
    assert abs(now_ms / 1000 - time.time()) < 5
    assert redis_store.get("probe") == b"set-by-script"
    assert redis_store.client.script_exists(script.sha) == [True]
    assert isinstance(redis_store, ScriptStore)


def test_a_failing_script_raises_store_error_naming_it(redis_store: RedisStore) -> None:
    """A Lua error surfaces as StoreError naming the script."""
    script = Script.from_source("broken", "return redis.call('NOSUCHCOMMAND')")
    with pytest.raises(StoreError, match="script broken failed"):
        redis_store.run_script(script, [redis_store.layout.key("k")])


async def test_async_run_script(live_redis_url: str) -> None:
    """The asyncio flavour runs the same scripts."""
    prefix = unique_prefix()
    try:
        async with AsyncRedisStore(live_redis_url, prefix=prefix) as store:
            assert isinstance(store, AsyncScriptStore)
            key = store.layout.key("n")
            assert await store.run_script(load_script("incr"), [key], [5, 1000]) == b"5"
            left = await store.ttl("n")
            assert left is not None
            assert 0 < left <= 1
    finally:
        delete_redis_keys(live_redis_url, prefix)


def test_guard_wraps_direct_client_calls(redis_store: RedisStore) -> None:
    """``guard`` turns redis-py errors of direct client use into StoreError."""
    redis_store.set("text", "x")
    with pytest.raises(StoreError, match="xadd failed"), redis_store.guard("xadd"):
        redis_store.client.xadd(redis_store.layout.key("text"), {"f": "v"})


def test_shipped_scripts_load_as_package_data() -> None:
    """Every _lua/*.lua file is reachable through importlib.resources, with the prelude first."""
    folder = resources.files("buttress.stores").joinpath("_lua")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".lua"))
    assert {"_lib.lua", "cas.lua", "incr.lua"} <= set(names)
    prelude = folder.joinpath("_lib.lua").read_text()
    for name in names:
        if name != "_lib.lua":
            script = load_script(name.removesuffix(".lua"))
            assert script.source.startswith(prelude)
            assert len(script.sha) == 40
    with pytest.raises(FileNotFoundError):
        load_script("no_such_script")


def test_importing_buttress_does_not_import_redis() -> None:
    """redis is optional: ``import buttress`` and ``import buttress.stores`` leave it unloaded."""
    code = "import sys, buttress, buttress.stores; print('redis' in sys.modules)"
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "False"
