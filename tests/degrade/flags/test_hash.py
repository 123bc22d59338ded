"""Bucketing: MurmurHash3 in C (mmh3) and pure Python agree, and match Unleash's values."""

from __future__ import annotations

import mmh3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress.degrade.flags import Flag, FlagRule, Variant, normalized_value
from buttress.degrade.flags._eval import decide, in_rollout, pick_variant
from buttress.degrade.flags._hash import VARIANT_SEED, hash_text, murmur3_32, pure_hash_text


def test_unleash_client_specification_values() -> None:
    """normalizedValue("123", "gr1") is 73 and ("999", "groupX") is 25, as in Unleash's tests."""
    assert normalized_value("123", "gr1") == 73
    assert normalized_value("999", "groupX") == 25


def test_pure_python_gives_the_same_unleash_values() -> None:
    """The fallback without mmh3 gives the same normalized values."""
    assert pure_hash_text("gr1:123", 0) % 100 + 1 == 73
    assert pure_hash_text("groupX:999", 0) % 100 + 1 == 25


def test_known_murmur3_vectors() -> None:
    """Published MurmurHash3 x86_32 vectors: empty input, seeds, and tails of 1 to 3 bytes."""
    assert murmur3_32(b"", 0) == 0
    assert murmur3_32(b"", 1) == 0x514E28B7
    assert murmur3_32(b"", 0xFFFFFFFF) == 0x81F16F39
    assert murmur3_32(b"\xff\xff\xff\xff", 0) == 0x76293B50
    assert murmur3_32(b"!Ce\x87", 0) == 0xF55B516B
    assert murmur3_32(b"!Ce", 0) == 0x7E4A8634
    assert murmur3_32(b"!C", 0) == 0xA0F7B07A
    assert murmur3_32(b"!", 0) == 0x72661CF4


@given(st.text(max_size=64), st.sampled_from([0, 1, VARIANT_SEED, 2**32 - 1]))
def test_pure_python_agrees_with_mmh3(text: str, seed: int) -> None:
    """For any text and seed, the pure-Python hash equals mmh3's unsigned hash."""
    assert pure_hash_text(text, seed) == mmh3.hash(text, seed, signed=False)
    assert hash_text(text, seed) == pure_hash_text(text, seed)


@pytest.mark.parametrize(
    ("flag", "subject", "rollout", "expected"),
    [
        ("Feature.flexibleRollout.10", "174", 10, True),
        ("Feature.flexibleRollout.10", "499", 10, False),
        ("Feature.flexibleRollout.userId.55", "25", 55, True),
        ("Feature.flexibleRollout.sessionId.42", "147", 42, True),
    ],
)
def test_unleash_flexible_rollout_cases(
    flag: str, subject: str, rollout: int, expected: bool
) -> None:
    """Unleash's flexible-rollout specification cases give the same answers here."""
    assert in_rollout(flag, subject, rollout) is expected
    assert decide(Flag(flag, enabled=True, rollout=rollout), {"user": subject}).enabled is expected


def test_unleash_strategy_variant_cases() -> None:
    """Unleash's strategy-variant cases (group "a", two equal variants): user 5 gets the
    first, user 0 the second."""
    flag = Flag(
        "Feature.strategy.multiple.variants",
        group="a",
        enabled=True,
        variants=[Variant("variantNameA"), Variant("variantNameB")],
    )
    assert pick_variant(flag, "5") == "variantNameA"
    assert pick_variant(flag, "0") == "variantNameB"


@given(st.text(max_size=20), st.integers(0, 100), st.integers(0, 100))
def test_rollouts_nest(subject: str, low: int, high: int) -> None:
    """A subject in a rollout of p percent is in every larger rollout (raising keeps them in)."""
    low, high = min(low, high), max(low, high)
    if in_rollout("checkout", subject, low):
        assert in_rollout("checkout", subject, high)


@given(st.text(min_size=1, max_size=20))
def test_bucket_is_between_1_and_100(subject: str) -> None:
    """Every normalized value lies in 1..100, so rollout 0 is nobody and 100 is everybody."""
    assert 1 <= normalized_value(subject, "checkout") <= 100
    assert not in_rollout("checkout", subject, 0)
    assert in_rollout("checkout", subject, 100)


def test_rollout_share_is_close_to_the_percentage() -> None:
    """Of 10,000 users, a 25 % rollout takes between 23 % and 27 % (the hash spreads them)."""
    inside = sum(in_rollout("share", str(user), 25) for user in range(10_000))
    assert 2300 <= inside <= 2700


def test_rule_rollout_uses_the_same_buckets() -> None:
    """A rule with a rollout buckets by the flag's group, like the flag's own rollout."""
    flag = Flag("f", enabled=True, rollout=0, rules=[FlagRule("tenant", "in", ["a"], rollout=30)])
    for user in map(str, range(200)):
        expected = in_rollout("f", user, 30)
        assert decide(flag, {"tenant": "a", "user": user}).enabled is expected
