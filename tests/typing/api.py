"""Checked by mypy (`make lint`), never run: the public API keeps its types through decorators."""

from __future__ import annotations

from typing import assert_type

import buttress
from buttress import Backoff, CircuitBreaker, Pipeline, Retry, Timeout

breaker = CircuitBreaker("db")
retry = Retry(on=ConnectionError, backoff=Backoff.exponential())


@breaker
def fetch(user_id: int, *, verbose: bool = False) -> str:
    return str(user_id)


@retry
async def afetch(user_id: int) -> bytes:
    return b""


assert_type(fetch(1, verbose=True), str)


def uses_call() -> None:
    assert_type(breaker.call(fetch, 1), str)
    assert_type(Pipeline(Timeout(1.0), retry, breaker).call(len, "abc"), int)
    assert_type(buttress.remaining(), float | None)


async def uses_acall() -> None:
    assert_type(await afetch(1), bytes)
    assert_type(await breaker.acall(afetch, 1), bytes)
    assert_type(await Pipeline(retry, breaker).acall(afetch, 2), bytes)


def uses_rate_limiter() -> None:
    from buttress.ratelimit import Decision, RateLimiter, TokenBucket

    limiter = RateLimiter(TokenBucket("10/s", burst=5), name="api")

    @limiter
    def ping(n: int) -> str:
        return str(n)

    assert_type(ping(1), str)
    assert_type(limiter.try_acquire("k", 2), Decision)
    assert_type(limiter.allow("k"), bool)
