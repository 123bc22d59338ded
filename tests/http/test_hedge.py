"""Hedged GETs on the async client, against a real server that stalls or fails one attempt."""

from __future__ import annotations

import httpx
import pytest

from buttress.errors import ConfigError
from buttress.http import AsyncClient, Client, HostPolicy, wrap
from buttress.retry import Backoff
from tests.http.conftest import FaultServer, Reply

# Hedge delays run on the real clock here: a hedge starts after 20 ms of a stalled attempt.
HEDGED = HostPolicy(hedge_delay=0.02, attempts=1, timeout=2)


async def test_a_stalled_get_is_overtaken_by_its_hedge(server: FaultServer) -> None:
    """The first attempt stalls; the hedge started 20 ms later answers and wins; the stalled
    attempt is cancelled and the stats count one request, two attempts, one hedge."""
    server.script("/slow", Reply(stall=5.0, body=b"first"), Reply(body=b"second"))
    async with AsyncClient(policies=HEDGED) as client:
        response = await client.get(server.url("/slow"))
        server.release()
        assert response.text == "second"
        assert response.headers["X-Request-Number"] == "2"
        stats = client.snapshot()[0]
    assert (stats.requests, stats.attempts, stats.hedges) == (1, 2, 1)
    assert stats.outcomes["success"] == 1


async def test_a_failed_attempt_starts_the_hedge_at_once(server: FaultServer) -> None:
    """A 503 from the first attempt launches the hedge without waiting for the delay."""
    server.script("/api", Reply(503), Reply(200, body=b"fine"))
    policy = HostPolicy(hedge_delay=60, attempts=1, timeout=2)
    async with AsyncClient(policies=policy) as client:
        response = await client.get(server.url("/api"))
        assert response.text == "fine"
        assert client.snapshot()[0].hedges == 1


async def test_when_every_hedged_attempt_fails_the_first_answer_is_returned(
    server: FaultServer,
) -> None:
    """Both attempts answer 503: the primary's answer comes back, its body readable."""
    server.script("/api", Reply(503, body=b"one"), Reply(503, body=b"two"))
    policy = HostPolicy(hedge_delay=60, attempts=1, timeout=2)
    async with AsyncClient(policies=policy) as client:
        response = await client.get(server.url("/api"))
    assert (response.status_code, response.text) == (503, "one")
    assert server.hits("/api") == 2


async def test_hedges_are_retried_as_a_whole(server: FaultServer) -> None:
    """With attempts=2, a hedged round that fails entirely is retried as a new round."""
    server.script("/api", 503, 503, 200)
    policy = HostPolicy(hedge_delay=60, attempts=2, timeout=2, backoff=Backoff.constant(0))
    async with AsyncClient(policies=policy) as client:
        assert (await client.get(server.url("/api"))).status_code == 200
        stats = client.snapshot()[0]
    assert (stats.attempts, stats.retries, stats.hedges) == (3, 1, 1)


async def test_posts_are_never_hedged(server: FaultServer) -> None:
    """A POST goes out once even with hedging configured."""
    server.script("/orders", Reply(503))
    policy = HostPolicy(hedge_delay=0, attempts=1, timeout=2)
    async with AsyncClient(policies=policy) as client:
        assert (await client.post(server.url("/orders"), content=b"x")).status_code == 503
    assert server.hits("/orders") == 1


def test_hedging_needs_the_async_client() -> None:
    """A sync client (built or wrapped) refuses a policy with hedge_delay, naming the field."""
    policies = {"*": {}, "api.example.com": {"hedge_delay": 0.1}}
    with pytest.raises(ConfigError) as caught:
        Client(policies=policies)
    assert caught.value.field == "policies['api.example.com'].hedge_delay"
    with httpx.Client() as plain, pytest.raises(ConfigError):
        wrap(plain, policies=policies)
