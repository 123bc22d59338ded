"""store_from_url and async_store_from_url: the scheme picks the backend; bad URLs are masked."""

from __future__ import annotations

import pytest

from buttress.errors import ConfigError
from buttress.stores import (
    AsyncMemoryStore,
    AsyncRedisStore,
    AsyncSQLiteStore,
    MemoryStore,
    RedisStore,
    SQLiteStore,
    async_store_from_url,
    store_from_url,
)
from buttress.testing import ManualClock

SECRET = "s3cret"


@pytest.mark.parametrize(
    ("url", "sync_type", "async_type"),
    [
        ("memory://", MemoryStore, AsyncMemoryStore),
        ("MEMORY://", MemoryStore, AsyncMemoryStore),
        ("sqlite:///:memory:", SQLiteStore, AsyncSQLiteStore),
        ("redis://127.0.0.1:6379/0", RedisStore, AsyncRedisStore),
        ("redis://localhost", RedisStore, AsyncRedisStore),
        (f"rediss://user:{SECRET}@cache.example:6380/2", RedisStore, AsyncRedisStore),
        ("unix:///run/redis.sock?db=3", RedisStore, AsyncRedisStore),
    ],
)
async def test_scheme_picks_the_backend(url: str, sync_type: type, async_type: type) -> None:
    """Each scheme builds its backend in both flavours, connecting to nothing yet."""
    with store_from_url(url) as store:
        assert type(store) is sync_type
        assert store.layout.prefix == "buttress:"
        assert SECRET not in repr(store)
    async with async_store_from_url(url, prefix="app:") as astore:
        assert type(astore) is async_type
        assert astore.layout.prefix == "app:"


def test_sqlite_paths_follow_sqlalchemy(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:///name.db is relative to the working directory, sqlite:////abs is absolute."""
    monkeypatch.chdir(tmp_path)
    with store_from_url("sqlite:///relative.db") as store:
        store.set("k", "v")
    assert (tmp_path / "relative.db").exists()
    absolute = tmp_path / "sub" / "absolute.db"
    absolute.parent.mkdir()
    with store_from_url(f"sqlite:///{absolute}") as store:
        assert store.url == f"sqlite:////{str(absolute).lstrip('/')}"
        store.set("k", "v")
    assert absolute.exists()


def test_sqlite_memory_databases_are_private() -> None:
    """Two sqlite:///:memory: stores share nothing."""
    with store_from_url("sqlite:///:memory:") as one, store_from_url("sqlite:///:memory:") as two:
        one.set("k", "v")
        assert two.get("k") is None


def test_the_clock_is_passed_to_local_backends() -> None:
    """clock= drives expiry for memory and SQLite."""
    clock = ManualClock()
    for url in ("memory://", "sqlite:///:memory:"):
        with store_from_url(url, clock=clock) as store:
            store.set("k", "v", ttl=5)
            clock.advance(5)
            assert store.get("k") is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "must be a store URL"),
        ("memory", "must be a store URL"),
        ("ftp://host/x", "unknown scheme"),
        (f"mysql://root:{SECRET}@db/app", "unknown scheme"),
        ("memory://somewhere", "takes no host"),
        ("sqlite://", "sqlite:///"),
        ("sqlite:///", "sqlite:///"),
        ("sqlite://relative.db", "sqlite:///"),
        ("sqlite:///x.db?mode=ro", "no query"),
        (f"redis://:{SECRET}@127.0.0.1:notaport/0", "bad port"),
        (f"redis://:{SECRET}@127.0.0.1:6379/notadb", "valid redis URL"),
        (f"redis://:{SECRET}@127.0.0.1:99999/0", "bad port"),
        (f"redis://:{SECRET}@127.0.0.1/0?sockettimeout=1", "valid redis URL"),
    ],
)
async def test_bad_urls_raise_config_error_naming_url_with_password_masked(
    url: str, reason: str
) -> None:
    """A bad URL is a ConfigError on field ``url``; its password never appears."""
    for build in (store_from_url, async_store_from_url):
        with pytest.raises(ConfigError) as caught:
            build(url)
        assert caught.value.field == "url"
        assert reason in str(caught.value)
        assert SECRET not in str(caught.value)
        assert caught.value.__cause__ is None


def test_a_url_that_is_not_a_string_is_a_config_error() -> None:
    """Passing something other than a str names the type, never the value."""
    with pytest.raises(ConfigError, match="url"):
        store_from_url(b"memory://")  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["{tag}", "a}"])
def test_prefixes_with_braces_are_refused(prefix: str) -> None:
    """Braces in the prefix would break the hash tag of every key."""
    with pytest.raises(ConfigError, match="prefix"):
        store_from_url("memory://", prefix=prefix)
