"""The store contract: one suite, every backend (memory, SQLite, Redis), sync and async."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from buttress.errors import ConfigError, StoreError
from buttress.stores import (
    AsyncKeyValueStore,
    AsyncStore,
    CounterStore,
    KeyValueStore,
    Store,
)
from tests.stores.conftest import LONGER, SHORT_TTL, Harness

INT64_MAX = 2**63 - 1


async def test_get_of_a_missing_key_is_none(harness: Harness) -> None:
    """An absent key reads as None, has no ttl, and counts as 0."""
    store = harness.store
    assert await store.get("missing") is None
    assert await store.ttl("missing") is None
    assert await store.get_counter("missing") == 0


async def test_set_then_get_returns_bytes(harness: Harness) -> None:
    """Values come back as bytes: str is stored UTF-8 encoded, bytes as they are."""
    store = harness.store
    await store.set("text", "héllo")
    await store.set("binary", b"\x00\xff\x01")
    await store.set("empty", b"")
    assert await store.get("text") == "héllo".encode()
    assert await store.get("binary") == b"\x00\xff\x01"
    assert await store.get("empty") == b""


async def test_set_replaces_and_without_ttl_never_expires(harness: Harness) -> None:
    """A plain set overwrites the value and clears an earlier ttl."""
    store = harness.store
    await store.set("k", "one", ttl=SHORT_TTL)
    await store.set("k", "two")
    assert await store.ttl("k") == math.inf
    await harness.elapse(LONGER)
    assert await store.get("k") == b"two"


async def test_set_if_absent_stores_only_once(harness: Harness) -> None:
    """set_if_absent is SET NX: the first caller wins, the value stays."""
    store = harness.store
    assert await store.set_if_absent("lock", "a") is True
    assert await store.set_if_absent("lock", "b") is False
    assert await store.get("lock") == b"a"


async def test_set_if_absent_succeeds_once_the_holder_expired(harness: Harness) -> None:
    """An expired key counts as absent for set_if_absent (a crashed lock holder)."""
    store = harness.store
    assert await store.set_if_absent("lock", "a", ttl=SHORT_TTL) is True
    await harness.elapse(LONGER)
    assert await store.set_if_absent("lock", "b", ttl=10) is True
    assert await store.get("lock") == b"b"


async def test_compare_and_set_swaps_only_on_match(harness: Harness) -> None:
    """compare_and_set replaces the value only when the current one equals expected."""
    store = harness.store
    await store.set("k", "v1")
    assert await store.compare_and_set("k", "other", "v2") is False
    assert await store.get("k") == b"v1"
    assert await store.compare_and_set("k", b"v1", "v2") is True
    assert await store.get("k") == b"v2"


async def test_compare_and_set_with_none_expected_means_absent(harness: Harness) -> None:
    """expected=None matches only an absent key, so a CAS loop can start from get() = None."""
    store = harness.store
    assert await store.compare_and_set("k", None, "first") is True
    assert await store.compare_and_set("k", None, "second") is False
    assert await store.get("k") == b"first"


async def test_compare_and_set_to_none_deletes(harness: Harness) -> None:
    """new=None deletes the key when it matches: releasing a lock only if we still hold it."""
    store = harness.store
    await store.set("lock", "token-1")
    assert await store.compare_and_set("lock", "token-2", None) is False
    assert await store.get("lock") == b"token-1"
    assert await store.compare_and_set("lock", "token-1", None) is True
    assert await store.get("lock") is None


async def test_compare_and_set_ttl_applies_to_the_new_value(harness: Harness) -> None:
    """The ttl given to compare_and_set renews (or removes) the expiry of the new value."""
    store = harness.store
    await store.set("lock", "me", ttl=SHORT_TTL)
    assert await store.compare_and_set("lock", "me", "me", ttl=30) is True
    assert 29 < await store.ttl("lock") <= 30
    assert await store.compare_and_set("lock", "me", "me") is True
    assert await store.ttl("lock") == math.inf


async def test_compare_and_set_on_an_expired_key_sees_it_absent(harness: Harness) -> None:
    """An expired value never matches; expected=None does."""
    store = harness.store
    await store.set("k", "old", ttl=SHORT_TTL)
    await harness.elapse(LONGER)
    assert await store.compare_and_set("k", "old", "new") is False
    assert await store.compare_and_set("k", None, "new") is True


async def test_delete_reports_whether_the_key_was_there(harness: Harness) -> None:
    """delete returns True once, then False; an expired key was not there."""
    store = harness.store
    await store.set("k", "v")
    assert await store.delete("k") is True
    assert await store.delete("k") is False
    await store.set("gone", "v", ttl=SHORT_TTL)
    await harness.elapse(LONGER)
    assert await store.delete("gone") is False


async def test_values_expire_after_their_ttl(harness: Harness) -> None:
    """A value set with a ttl reads as absent once the ttl has passed."""
    store = harness.store
    await store.set("short", "v", ttl=SHORT_TTL)
    await store.set("long", "v", ttl=timedelta(seconds=30))
    await harness.elapse(LONGER)
    assert await store.get("short") is None
    assert await store.ttl("short") is None
    assert await store.get("long") == b"v"


async def test_ttl_reports_seconds_left(harness: Harness) -> None:
    """ttl is seconds left (a float), inf without expiry, None when absent."""
    store = harness.store
    await store.set("k", "v", ttl=10)
    await store.set("forever", "v")
    left = await store.ttl("k")
    assert isinstance(left, float)
    assert 9 < left <= 10
    assert await store.ttl("forever") == math.inf


async def test_incr_counts_from_zero_and_returns_the_new_value(harness: Harness) -> None:
    """incr starts at 0, adds amounts (negative too) and returns the result."""
    store = harness.store
    assert await store.incr("n") == 1
    assert await store.incr("n", 5) == 6
    assert await store.incr("n", -10) == -4
    assert await store.incr("n", 0) == -4
    assert await store.get_counter("n") == -4
    assert await store.get("n") == b"-4"


async def test_incr_ttl_starts_with_the_counter_and_is_not_extended(harness: Harness) -> None:
    """A counter's ttl is set by the increment that creates it; later ones keep it (a window)."""
    store = harness.store
    assert await store.incr("window", 1, ttl=SHORT_TTL) == 1
    assert await store.incr("window", 1, ttl=30) == 2
    assert await store.ttl("window") <= SHORT_TTL
    await harness.elapse(LONGER)
    assert await store.get_counter("window") == 0
    assert await store.incr("window", 1, ttl=30) == 1
    assert 29 < await store.ttl("window") <= 30


async def test_incr_gives_an_expiry_to_a_counter_without_one(harness: Harness) -> None:
    """incr with a ttl on a counter that never expires gives it that ttl."""
    store = harness.store
    await store.incr("n", 3)
    assert await store.ttl("n") == math.inf
    assert await store.incr("n", 1, ttl=20) == 4
    assert 19 < await store.ttl("n") <= 20


async def test_counters_share_the_key_space_with_values(harness: Harness) -> None:
    """A value holding a decimal integer is a counter; set can reset one."""
    store = harness.store
    await store.set("n", "41")
    assert await store.incr("n") == 42
    await store.set("n", b"0")
    assert await store.get_counter("n") == 0


@pytest.mark.parametrize("value", [b"abc", b"007", b" 1", b"+1", b"-0", b"1.5", b"", b"9" * 20])
async def test_a_value_that_is_not_an_integer_is_not_a_counter(
    harness: Harness, value: bytes
) -> None:
    """incr and get_counter raise StoreError on a non-integer value (Redis's rules) and keep it."""
    store = harness.store
    await store.set("n", value)
    with pytest.raises(StoreError, match="incr") as caught:
        await store.incr("n")
    if len(value) >= 3:
        assert value.decode() not in str(caught.value), "errors never carry the raw value"
    with pytest.raises(StoreError, match="get_counter"):
        await store.get_counter("n")
    assert await store.get("n") == value


async def test_counters_are_exact_across_the_64_bit_range(harness: Harness) -> None:
    """Counters near 2**63 stay exact, with or without a ttl (Lua numbers are doubles)."""
    store = harness.store
    await store.set("n", str(INT64_MAX - 2))
    assert await store.incr("n") == INT64_MAX - 1
    assert await store.incr("n", 1, ttl=30) == INT64_MAX
    assert await store.incr("low", -INT64_MAX, ttl=30) == -INT64_MAX
    assert await store.get_counter("low") == -INT64_MAX


async def test_counter_overflow_raises_and_changes_nothing(harness: Harness) -> None:
    """Going past the signed 64-bit range raises StoreError; the counter keeps its value."""
    store = harness.store
    await store.set("n", str(INT64_MAX))
    with pytest.raises(StoreError, match="overflow"):
        await store.incr("n")
    assert await store.get_counter("n") == INT64_MAX


async def test_prefixes_isolate_stores(harness: Harness, make_store) -> None:
    """Two stores with different prefixes on one backend never see each other's keys."""
    if harness.backend == "memory":
        pytest.skip("memory stores never share data")
    other = make_store(harness.backend)
    await harness.store.set("k", "mine")
    assert other.get("k") is None
    other.set("k", "theirs")
    assert await harness.store.get("k") == b"mine"


async def test_any_non_empty_str_is_a_key(harness: Harness) -> None:
    """Braces and percent signs (escaped in the layout) and other text make distinct keys."""
    store = harness.store
    keys = ["a{b", "a%7Bb", "}", "{}", "%", "a b\n", "ключ", "x" * 300]
    for index, key in enumerate(keys):
        await store.set(key, str(index))
    assert [await store.get(key) for key in keys] == [str(i).encode() for i in range(len(keys))]


@pytest.mark.parametrize("key", ["", 5, None, b"k"])
async def test_bad_keys_raise_config_error(harness: Harness, key: object) -> None:
    """A key must be a non-empty str."""
    with pytest.raises(ConfigError, match="key"):
        await harness.store.get(key)
    with pytest.raises(ConfigError, match="key"):
        await harness.store.incr(key)


@pytest.mark.parametrize("ttl", [0, -1, math.nan, math.inf, "10"])
async def test_bad_ttls_raise_config_error(harness: Harness, ttl: object) -> None:
    """A ttl must be a positive finite duration; nothing is written."""
    with pytest.raises(ConfigError, match="ttl"):
        await harness.store.set("k", "v", ttl=ttl)
    with pytest.raises(ConfigError, match="ttl"):
        await harness.store.incr("k", 1, ttl=ttl)
    assert await harness.store.get("k") is None


@pytest.mark.parametrize("amount", [1.5, True, 2**63, "1"])
async def test_bad_amounts_raise_config_error(harness: Harness, amount: object) -> None:
    """An increment must be an int in the signed 64-bit range."""
    with pytest.raises(ConfigError, match="amount"):
        await harness.store.incr("n", amount)


async def test_values_must_be_bytes_or_str(harness: Harness) -> None:
    """Storing anything but bytes or str raises TypeError naming the argument."""
    with pytest.raises(TypeError, match="value"):
        await harness.store.set("k", 5)
    with pytest.raises(TypeError, match="new"):
        await harness.store.compare_and_set("k", None, 5)


async def test_operations_after_close_raise_store_error(harness: Harness) -> None:
    """A closed store refuses every operation with StoreError; closing twice is fine."""
    await harness.store.set("k", "v")
    await harness.store.aclose()
    await harness.store.aclose()
    with pytest.raises(StoreError, match=r"get failed .*closed"):
        await harness.store.get("k")


async def test_stores_satisfy_their_protocols(harness: Harness) -> None:
    """Each backend is a Store (sync) or AsyncStore (async), so capability checks work."""
    if harness.flavour == "sync":
        store = harness.store.sync
        assert isinstance(store, Store)
        assert isinstance(store, KeyValueStore)
        assert isinstance(store, CounterStore)
    else:
        assert isinstance(harness.store, AsyncStore)
        assert isinstance(harness.store, AsyncKeyValueStore)
    assert harness.prefix in repr(
        harness.store.sync if harness.flavour == "sync" else harness.store
    )
