"""Stable bucketing, compatible with Unleash: MurmurHash3 (x86, 32-bit) of ``"{group}:{subject}"``.

``normalized_value(subject, group)`` is Unleash's ``normalizedValue``: the unsigned hash of the
UTF-8 text ``f"{group}:{subject}"`` with seed 0, modulo 100, plus 1 (so 1..100); a subject is in
a rollout of ``p`` percent when its value is ``<= p``. Unleash's client specification checks
``normalizedValue("123", "gr1") == 73`` and ``normalizedValue("999", "groupX") == 25``.
Variants use the same hash with ``VARIANT_SEED`` and the total weight as the normaliser, as
Unleash's strategy variants do.

``mmh3`` (C, the ``flags`` extra) is used when installed; ``murmur3_32`` is the pure-Python
fallback, with the same results (a test compares them).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

__all__ = [
    "VARIANT_SEED",
    "hash_text",
    "murmur3_32",
    "normalized_value",
    "pure_hash_text",
]

VARIANT_SEED = 86028157
"""Unleash's seed for choosing a variant (``normalizedVariantValue``)."""

_MASK = 0xFFFFFFFF
_C1 = 0xCC9E2D51
_C2 = 0x1B873593
_BLOCKS = struct.Struct("<I")


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit of ``data`` with ``seed``, unsigned (what ``mmh3.hash(...,
    signed=False)`` returns)."""
    h = seed & _MASK
    length = len(data)
    whole = length - length % 4
    for (k,) in _BLOCKS.iter_unpack(data[:whole]):
        k = (k * _C1) & _MASK
        k = ((k << 15) | (k >> 17)) & _MASK
        h ^= (k * _C2) & _MASK
        h = ((h << 13) | (h >> 19)) & _MASK
        h = (h * 5 + 0xE6546B64) & _MASK
    tail = data[whole:]
    if tail:
        k = 0
        for shift, byte in enumerate(tail):
            k |= byte << (8 * shift)
        k = (k * _C1) & _MASK
        k = ((k << 15) | (k >> 17)) & _MASK
        h ^= (k * _C2) & _MASK
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h


def pure_hash_text(text: str, seed: int = 0) -> int:
    """The unsigned MurmurHash3 of ``text`` encoded as UTF-8, in pure Python."""
    return murmur3_32(text.encode("utf-8"), seed)


def _choose() -> Callable[[str, int], int]:
    try:
        import mmh3
    except ImportError:
        return pure_hash_text
    fast = mmh3.hash

    def hash_text(text: str, seed: int = 0) -> int:
        return fast(text, seed, False)  # mmh3 hashes a str as its UTF-8 bytes

    return hash_text


hash_text: Callable[[str, int], int] = _choose()
"""The unsigned MurmurHash3 of ``text`` (UTF-8): ``mmh3`` when installed, else pure Python."""


def normalized_value(subject: str, group: str, normalizer: int = 100, seed: int = 0) -> int:
    """Unleash's normalized value: ``murmur3_32(f"{group}:{subject}", seed) % normalizer + 1``."""
    return hash_text(f"{group}:{subject}", seed) % normalizer + 1
