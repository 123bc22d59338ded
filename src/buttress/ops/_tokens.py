"""Bearer tokens for the admin API: roles, hashing, constant-time lookup, failed-attempt limits.

Configuration holds only SHA-256 hashes; the token itself is shown once, when created. A
presented token is hashed and compared with ``hmac.compare_digest`` against *every* configured
hash (no early exit), so neither which token matched nor how far a guess got shows in the timing.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import math
import re
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from buttress import _options as opt
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress.errors import ConfigError

__all__ = ["FailureLimiter", "Role", "Token", "TokenSet", "generate_token", "hash_token"]

TOKEN_PREFIX = "btr_"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class Role(enum.IntEnum):
    """What a token may do: a ``viewer`` reads, an ``operator`` also changes things."""

    VIEWER = 1
    OPERATOR = 2

    @classmethod
    def parse(cls, value: object) -> Role:
        """A Role from a Role or its name (``"viewer"``, ``"operator"``); ConfigError otherwise."""
        if isinstance(value, Role):
            return value
        if isinstance(value, str) and value.strip().upper() in cls.__members__:
            return cls[value.strip().upper()]
        raise ConfigError("tokens.role", value, "must be 'viewer' or 'operator'")

    def __str__(self) -> str:
        return self.name.lower()


def hash_token(token: str) -> str:
    """The SHA-256 of ``token`` (UTF-8) as 64 lower-case hex digits, as configuration stores it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def generate_token() -> tuple[str, str]:
    """A new random token (``btr_`` + 256 random bits) and its SHA-256 hex; show it once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


@dataclass(frozen=True, slots=True)
class Token:
    """A configured token: its ``name`` (the audit log's actor), ``role`` and ``sha256`` hex."""

    name: str
    role: Role
    sha256: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("tokens.name", self.name, "must be a non-empty string")
        object.__setattr__(self, "role", Role.parse(self.role))
        digest = self.sha256.strip().lower() if isinstance(self.sha256, str) else self.sha256
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            # Never echo the value: someone may have pasted the token itself here.
            raise ConfigError(
                f"tokens.{self.name}.sha256", "<hidden>", "must be 64 hex digits (a SHA-256)"
            )
        object.__setattr__(self, "sha256", digest)

    @classmethod
    def parse(cls, value: object) -> Token:
        """A Token from a Token, a ``(name, role, sha256)`` tuple or an object with those fields."""
        if isinstance(value, Token):
            return value
        if isinstance(value, tuple | list) and len(value) == 3:
            return cls(str(value[0]), Role.parse(value[1]), value[2])
        fields = [getattr(value, name, None) for name in ("name", "role", "sha256")]
        if all(field is not None for field in fields):
            return cls(str(fields[0]), Role.parse(fields[1]), fields[2])  # type: ignore[arg-type]
        raise ConfigError("tokens", type(value).__name__, "must be (name, role, sha256) items")


class TokenSet:
    """The configured tokens; ``authenticate(token)`` finds the one a bearer token matches."""

    def __init__(self, tokens: Iterable[Any] = ()) -> None:
        self.tokens: tuple[Token, ...] = tuple(Token.parse(item) for item in tokens)
        names = [token.name for token in self.tokens]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError("tokens.name", duplicates, "must be unique")

    def authenticate(self, presented: str) -> Token | None:
        """The token whose hash matches ``presented``, or None; every hash is compared."""
        digest = hash_token(presented)
        found: Token | None = None
        for token in self.tokens:
            if hmac.compare_digest(digest, token.sha256):
                found = token
        return found

    def __len__(self) -> int:
        return len(self.tokens)


class FailureLimiter:
    """Counts failed authentications per client; ``max_failures`` within ``window`` seconds block
    that client until the oldest of them leaves the window. Defaults: 10 failures in 60 s.

    Memory is bounded: at most ``max_clients`` addresses are tracked (the least recently failing
    ones are forgotten first).
    """

    def __init__(
        self,
        *,
        max_failures: int = 10,
        window: float = 60.0,
        max_clients: int = 10_000,
        clock: Clock | None = None,
    ) -> None:
        self.max_failures = opt.integer("auth_failures", max_failures)
        self.window = opt.duration("auth_window", window)
        self.max_clients = opt.integer("max_clients", max_clients)
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> float | None:
        """Seconds until ``client`` may try again, or None if it is not blocked."""
        with self._lock:
            times = self._failures.get(client)
            if times is None:
                return None
            now = self._clock.monotonic()
            self._expire(client, times, now)
            if len(times) < self.max_failures:
                return None
            return times[0] + self.window - now

    def fail(self, client: str) -> None:
        """Record a failed authentication from ``client``."""
        now = self._clock.monotonic()
        with self._lock:
            times = self._failures.get(client)
            if times is None:
                times = self._failures[client] = deque(maxlen=self.max_failures)
                while len(self._failures) > self.max_clients:
                    self._failures.popitem(last=False)
            else:
                self._failures.move_to_end(client)
            times.append(now)

    def _expire(self, client: str, times: deque[float], now: float) -> None:
        while times and times[0] + self.window <= now:
            times.popleft()
        if not times:
            del self._failures[client]


def retry_after_header(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, rounded up, never negative."""
    return str(max(0, math.ceil(seconds)))
