"""What every backend shares: the key layout, argument checks, counters and error wrapping.

Values are bytes: ``set`` accepts ``bytes`` or ``str`` (encoded as UTF-8) and reads return
``bytes``. Counters live in the same key space as values, as decimal ASCII integers (what
Redis ``INCRBY`` writes), so ``get`` of a counter returns ``b"3"`` on every backend.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import unquote, urlsplit

from buttress._options import optional_duration
from buttress._redact import MASK, redact
from buttress.errors import ConfigError, StoreError

__all__ = [
    "DEFAULT_PREFIX",
    "INT64_MAX",
    "INT64_MIN",
    "KeyLayout",
    "Value",
    "add_counter",
    "as_bytes",
    "check_amount",
    "check_ttl",
    "closed_error",
    "mask_url",
    "parse_counter",
    "scrub",
    "store_error",
    "ttl_ms",
]

Value: TypeAlias = bytes | str
"""What can be stored: bytes, or a str stored as its UTF-8 encoding. Reads return bytes."""

DEFAULT_PREFIX = "buttress:"
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Redis's string2ll: no sign on zero, no leading zeros, no spaces or "+".
_INTEGER = re.compile(rb"(?:0|-?[1-9][0-9]{0,18})\Z")
_ESCAPES = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D"})


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Where a logical key lives in the backend: ``<prefix>{<key>}``, then ``:part`` suffixes.

    ``layout.key("breaker:db")`` is ``buttress:{breaker:db}``; ``layout.key("breaker:db",
    "bucket", "17")`` is ``buttress:{breaker:db}:bucket:17``. The braces are a Redis Cluster
    hash tag: every key derived from one logical key lands in the same slot, so one Lua script
    may touch them all. Any non-empty str is a key: ``{``, ``}`` and ``%`` in it are
    percent-escaped, so keys from untrusted input (client addresses, headers) cannot move the
    tag. The prefix (default ``"buttress:"``) and the parts are the program's own and may not
    contain braces; the parts are not checked.
    """

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str) or "{" in self.prefix or "}" in self.prefix:
            raise ConfigError("prefix", self.prefix, "must be a string without { or }")

    def key(self, key: str, *parts: str) -> str:
        """The backend key of logical ``key``, with ``parts`` appended after colons."""
        if type(key) is not str or not key:
            raise ConfigError("key", key, "must be a non-empty string")
        if "{" in key or "}" in key or "%" in key:
            key = key.translate(_ESCAPES)
        full = f"{self.prefix}{{{key}}}"
        return ":".join((full, *parts)) if parts else full


def as_bytes(value: Value, field: str = "value") -> bytes:
    """``value`` as bytes (str is UTF-8 encoded); TypeError for anything else."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return bytes(value)
    raise TypeError(f"{field}: must be bytes or str, got {type(value).__name__}")


def check_ttl(ttl: object) -> float | None:
    """A ttl in seconds (> 0, float or timedelta) or None for no expiry."""
    return optional_duration("ttl", ttl)


def ttl_ms(ttl: float) -> int:
    """Whole milliseconds for Redis ``PX``: rounded up, at least 1."""
    return max(1, math.ceil(ttl * 1000.0))


def check_amount(amount: object) -> int:
    """An increment: an int in the signed 64-bit range (what Redis accepts)."""
    if type(amount) is not int or not INT64_MIN <= amount <= INT64_MAX:
        raise ConfigError("amount", amount, "must be an integer in the signed 64-bit range")
    return amount


def parse_counter(raw: bytes | None, operation: str, url: str) -> int:
    """The integer a stored value holds (0 when absent); StoreError if it is not a counter."""
    if raw is None:
        return 0
    if _INTEGER.match(raw) is None or not INT64_MIN <= (number := int(raw)) <= INT64_MAX:
        raise store_error(operation, url, "value is not an integer or out of range")
    return number


def add_counter(current: int, amount: int, operation: str, url: str) -> int:
    """``current + amount``; StoreError when it leaves the signed 64-bit range (as Redis)."""
    result = current + amount
    if not INT64_MIN <= result <= INT64_MAX:
        raise store_error(operation, url, "increment or decrement would overflow")
    return result


def mask_url(url: str) -> str:
    """``url`` with its password masked, safe for messages and logs."""
    return redact(url)


def _password(url: str) -> str | None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def scrub(text: str, url: str) -> str:
    """``text`` with secrets masked, the password of ``url`` included wherever it appears."""
    password = _password(url)
    if password and len(password) >= 3:
        text = text.replace(password, MASK)
    return redact(text)


def store_error(operation: str, url: str, reason: BaseException | str) -> StoreError:
    """A StoreError naming ``operation`` and the masked ``url``; the reason is scrubbed too."""
    if isinstance(reason, BaseException):
        reason = f"{type(reason).__name__}: {reason}"
    return StoreError(f"store {operation} failed ({mask_url(url)}): {scrub(reason, url)}")


def closed_error(operation: str, url: str) -> StoreError:
    """The StoreError for an operation on a closed store."""
    return store_error(operation, url, "the store is closed")
