"""Tokens: generation, hashing, roles, constant-time lookup and the failed-attempt limiter."""

from __future__ import annotations

import hmac

import pytest

from buttress.errors import ConfigError
from buttress.ops import Role, Token, generate_token, hash_token
from buttress.ops._tokens import FailureLimiter, TokenSet, retry_after_header
from buttress.testing import ManualClock


def test_generate_token_gives_a_fresh_token_and_its_hash() -> None:
    """Each token is new, prefixed, long, and its hash is SHA-256 hex of it."""
    token, digest = generate_token()
    other, _ = generate_token()
    assert token.startswith("btr_")
    assert len(token) > 40
    assert token != other
    assert digest == hash_token(token)
    assert len(digest) == 64


def test_token_validation_never_echoes_the_secret() -> None:
    """Bad roles, names and hashes raise ConfigError; a bad hash is not shown in the message."""
    with pytest.raises(ConfigError, match="viewer"):
        Token("a", "admin", "0" * 64)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="non-empty"):
        Token(" ", Role.VIEWER, "0" * 64)
    with pytest.raises(ConfigError, match="64 hex") as info:
        Token.parse(("a", "viewer", "btr_plaintext-token"))
    assert "plaintext" not in str(info.value)
    with pytest.raises(ConfigError, match="unique"):
        TokenSet([("a", "viewer", "0" * 64), ("a", "operator", "1" * 64)])
    with pytest.raises(ConfigError, match="name, role, sha256"):
        Token.parse(42)


def test_token_parse_accepts_tuples_and_objects() -> None:
    """Tuples, Tokens and objects with name/role/sha256 attributes (config) all parse."""

    class Configured:
        name, role, sha256 = "ci", "OPERATOR", "AB" * 32

    token = Token.parse(Configured())
    assert token == Token("ci", Role.OPERATOR, "ab" * 32)
    assert Token.parse(token) is token
    assert str(token.role) == "operator"
    assert Role.VIEWER < Role.OPERATOR


def test_authenticate_compares_every_hash_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lookup calls hmac.compare_digest once per configured token, even after a match."""
    tokens = [generate_token() for _ in range(4)]
    token_set = TokenSet((f"t{i}", "viewer", digest) for i, (_, digest) in enumerate(tokens))
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def counting(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("buttress.ops._tokens.hmac.compare_digest", counting)
    found = token_set.authenticate(tokens[0][0])
    assert found is not None
    assert found.name == "t0"
    assert len(calls) == 4
    calls.clear()
    assert token_set.authenticate("wrong") is None
    assert len(calls) == 4
    assert all(a == hash_token("wrong") for a, _ in calls)


def test_failure_limiter_blocks_until_the_window_passes() -> None:
    """10 failures in 60 s block a client until the oldest leaves the window; others are free."""
    clock = ManualClock()
    limiter = FailureLimiter(max_failures=3, window=60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("a") is None
        limiter.fail("a")
        clock.advance(10)
    assert limiter.retry_after("a") == pytest.approx(30)
    assert limiter.retry_after("b") is None
    clock.advance(30)
    assert limiter.retry_after("a") is None
    clock.advance(60)
    assert limiter.retry_after("a") is None
    assert limiter._failures == {}


def test_failure_limiter_memory_is_bounded() -> None:
    """At most max_clients addresses are tracked; the oldest is forgotten first."""
    limiter = FailureLimiter(max_failures=1, max_clients=2, clock=ManualClock())
    for client in ("a", "b", "c"):
        limiter.fail(client)
    assert list(limiter._failures) == ["b", "c"]
    assert limiter.retry_after("a") is None
    assert limiter.retry_after("c") is not None


def test_retry_after_header_rounds_up() -> None:
    """Retry-After is whole seconds, rounded up, never negative."""
    assert [retry_after_header(s) for s in (0.2, 1.0, 29.01, -3)] == ["1", "1", "30", "0"]
