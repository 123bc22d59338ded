"""The resilient transport against a real local server: retries, Retry-After, timeouts,
breakers, rate limits, sync and async alike."""

from __future__ import annotations

import email.utils
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from buttress.errors import CircuitOpenError, RateLimitedError
from buttress.http import HostPolicy
from buttress.retry import Backoff
from buttress.testing import ManualClock
from tests.http.conftest import FaultServer, Reply, Runner

NO_WAIT = Backoff.constant(0, cap=30)


def stats_of(runner: Runner, server: FaultServer):
    assert runner.client is not None
    return runner.client.resilience.host(server.host).stats(runner.client.resilience.thresholds)


async def test_a_healthy_request_is_counted(runner: Runner, server: FaultServer, clock) -> None:
    """A 200 answer reaches the caller and counts as one successful request and attempt."""
    runner.make(clock=clock)
    response = await runner.send("GET", server.url("/ok"))
    assert response.status_code == 200
    assert response.text == "ok"
    stats = stats_of(runner, server)
    assert (stats.requests, stats.successes, stats.attempts, stats.retries) == (1, 1, 1, 0)
    assert stats.outcomes["success"] == 1
    assert stats.success_rate == 1.0
    assert stats.breaker_state == "closed"


async def test_a_get_is_retried_until_the_server_recovers(
    runner: Runner, server: FaultServer, clock
) -> None:
    """Two 503s then a 200: the caller sees the 200, the server saw three requests."""
    server.script("/flaky", 503, 503, 200)
    runner.make(clock=clock, policies=HostPolicy(backoff=NO_WAIT))
    response = await runner.send("GET", server.url("/flaky"))
    assert response.status_code == 200
    assert server.hits("/flaky") == 3
    stats = stats_of(runner, server)
    assert (stats.requests, stats.attempts, stats.retries) == (1, 3, 2)


async def test_retry_after_seconds_is_honoured(runner: Runner, server: FaultServer, clock) -> None:
    """A 429 with Retry-After: 2 makes the retry wait exactly 2 s of virtual time."""
    server.script("/quota", Reply(429, {"Retry-After": "2"}), 200)
    runner.make(clock=clock)
    response = await runner.send("GET", server.url("/quota"))
    assert response.status_code == 200
    assert 2.0 in clock.sleeps
    assert clock.monotonic() >= 2.0
    assert stats_of(runner, server).latency_p50 == pytest.approx(clock.monotonic())


async def test_retry_after_http_date_is_honoured(
    runner: Runner, server: FaultServer, clock: ManualClock
) -> None:
    """A 503 with an HTTP-date Retry-After waits until that date on the virtual wall clock."""
    when = email.utils.formatdate(clock.time() + 5, usegmt=True)
    server.script("/later", Reply(503, {"Retry-After": when}), 200)
    runner.make(clock=clock)
    assert (await runner.send("GET", server.url("/later"))).status_code == 200
    assert max(clock.sleeps) == pytest.approx(5.0, abs=1.0)


async def test_a_retry_after_beyond_the_cap_is_returned_at_once(
    runner: Runner, server: FaultServer, clock
) -> None:
    """Retry-After: 3600 is longer than the backoff's cap: the 429 goes back to the caller
    without a retry rather than trying again too early."""
    server.script("/busy", Reply(429, {"Retry-After": "3600"}, b"slow down"))
    runner.make(clock=clock)
    response = await runner.send("GET", server.url("/busy"))
    assert response.status_code == 429
    assert response.text == "slow down"
    assert server.hits("/busy") == 1
    assert clock.sleeps == []
    assert stats_of(runner, server).outcomes["throttled"] == 1


async def test_the_total_timeout_stops_retrying(runner: Runner, server: FaultServer, clock) -> None:
    """A Retry-After of 10 s does not fit in a total timeout of 5 s: the 503 is returned."""
    server.script("/down", Reply(503, {"Retry-After": "10"}))
    runner.make(clock=clock, policies=HostPolicy(total_timeout=5))
    response = await runner.send("GET", server.url("/down"))
    assert response.status_code == 503
    assert server.hits("/down") == 1


async def test_attempts_run_out_and_the_last_answer_is_returned(
    runner: Runner, server: FaultServer, clock
) -> None:
    """Three 502s with attempts=3: the third answer is returned, its body still readable."""
    server.script("/broken", Reply(502, body=b"bad gateway"))
    runner.make(clock=clock, policies=HostPolicy(backoff=NO_WAIT))
    response = await runner.send("GET", server.url("/broken"))
    assert (response.status_code, response.text) == (502, "bad gateway")
    assert server.hits("/broken") == 3
    assert stats_of(runner, server).outcomes["server_error"] == 1


async def test_retried_answers_give_their_connection_back(
    runner: Runner, server: FaultServer, clock
) -> None:
    """With a pool of one connection, retries still get a connection: each retried answer
    was read and released before the next attempt."""
    server.script("/flaky", 503, 503, 200)
    runner.make(
        clock=clock,
        policies=HostPolicy(backoff=NO_WAIT, timeout=2),
        limits=httpx.Limits(max_connections=1),
    )
    assert (await runner.send("GET", server.url("/flaky"))).status_code == 200


async def test_post_is_not_retried(runner: Runner, server: FaultServer, clock) -> None:
    """A POST without an Idempotency-Key is sent once, even on a 503."""
    server.script("/orders", 503)
    runner.make(clock=clock, policies=HostPolicy(backoff=NO_WAIT))
    response = await runner.send("POST", server.url("/orders"), content=b"{}")
    assert response.status_code == 503
    assert server.hits("/orders") == 1


async def test_post_with_an_idempotency_key_is_retried(
    runner: Runner, server: FaultServer, clock
) -> None:
    """A POST carrying an Idempotency-Key is retried, with the same body each time."""
    server.script("/orders", 503, 201)
    runner.make(clock=clock, policies=HostPolicy(backoff=NO_WAIT))
    response = await runner.send(
        "POST", server.url("/orders"), content=b'{"n": 1}', headers={"Idempotency-Key": "k1"}
    )
    assert response.status_code == 201
    assert [body for _, _, _, body in server.requests] == [b'{"n": 1}', b'{"n": 1}']


async def test_post_is_retried_when_configured(runner: Runner, server: FaultServer, clock) -> None:
    """retry_methods including POST makes POSTs retried like GETs."""
    server.script("/orders", 503, 201)
    methods = {"GET", "POST"}
    runner.make(clock=clock, policies=HostPolicy(backoff=NO_WAIT, retry_methods=methods))
    assert (await runner.send("POST", server.url("/orders"), content=b"x")).status_code == 201


async def test_a_streamed_body_is_not_replayed(runner: Runner, server: FaultServer, clock) -> None:
    """A PUT whose body is a stream cannot be sent twice: the 503 is returned after one try."""
    server.script("/upload", 503)
    runner.make(clock=clock, policies=HostPolicy(backoff=NO_WAIT))

    def chunks() -> Iterator[bytes]:
        yield b"a"

    async def achunks() -> AsyncIterator[bytes]:
        yield b"a"

    body = chunks() if runner.mode == "sync" else achunks()
    response = await runner.send("PUT", server.url("/upload"), content=body)
    assert response.status_code == 503
    assert server.hits("/upload") == 1


async def test_a_refused_connection_is_retried_for_any_method(runner: Runner, clock) -> None:
    """A POST to a port where nothing listens never left: it is retried, then the
    ConnectError is raised and counted as connect_error."""
    from tests.servers import stopped_port

    port = stopped_port()
    runner.make(clock=clock, policies=HostPolicy(backoff=NO_WAIT))
    with pytest.raises(httpx.ConnectError):
        await runner.send("POST", f"http://127.0.0.1:{port}/x", content=b"x")
    assert runner.client is not None
    stats = runner.client.snapshot()[0]
    assert (stats.requests, stats.attempts, stats.retries) == (1, 3, 2)
    assert stats.outcomes["connect_error"] == 1


async def test_a_stalled_answer_times_out(runner: Runner, server: FaultServer, clock) -> None:
    """A server that stalls past the attempt timeout gives a ReadTimeout, counted as a
    timeout and as a breaker failure."""
    server.script("/stall", Reply(stall=5.0))
    runner.make(clock=clock, policies=HostPolicy(timeout=0.05, attempts=1))
    with pytest.raises(httpx.ReadTimeout):
        await runner.send("GET", server.url("/stall"))
    server.release()
    stats = stats_of(runner, server)
    assert stats.outcomes["timeout"] == 1
    assert runner.client is not None
    breaker = runner.client.resilience.host(server.host).breaker
    assert breaker is not None
    assert breaker.snapshot().failures == 1


async def test_a_stall_then_a_recovery_is_retried(
    runner: Runner, server: FaultServer, clock
) -> None:
    """The first attempt stalls past its timeout, the retry gets the answer."""
    server.script("/stall", Reply(stall=5.0), 200)
    runner.make(clock=clock, policies=HostPolicy(timeout=0.05, backoff=NO_WAIT))
    response = await runner.send("GET", server.url("/stall"))
    server.release()
    assert response.status_code == 200
    assert stats_of(runner, server).retries == 1


async def test_the_breaker_opens_rejects_and_recovers(
    runner: Runner, server: FaultServer, clock: ManualClock
) -> None:
    """500s open the host's breaker; then requests fail fast without reaching the server; after
    open_for a trial goes through to the recovered server and closes it."""
    server.script("/api", 500)
    policy = HostPolicy(attempts=1, minimum_calls=4, window=4, open_for=10)
    runner.make(clock=clock, policies=policy)
    for _ in range(4):
        assert (await runner.send("GET", server.url("/api"))).status_code == 500
    with pytest.raises(CircuitOpenError) as caught:
        await runner.send("GET", server.url("/api"))
    assert caught.value.retry_after == pytest.approx(10)
    assert server.hits("/api") == 4
    assert stats_of(runner, server).breaker_state == "open"
    assert stats_of(runner, server).status == "fail"
    server.script("/api", 200)
    clock.advance(10)
    assert (await runner.send("GET", server.url("/api"))).status_code == 200
    stats = stats_of(runner, server)
    assert stats.breaker_state == "closed"
    assert stats.outcomes["circuit_open"] == 1


async def test_client_errors_do_not_open_the_breaker(
    runner: Runner, server: FaultServer, clock
) -> None:
    """A stream of 404s is the caller's problem, not the host's: the breaker stays closed."""
    server.script("/missing", 404)
    runner.make(clock=clock, policies=HostPolicy(minimum_calls=2, window=2))
    for _ in range(5):
        assert (await runner.send("GET", server.url("/missing"))).status_code == 404
    stats = stats_of(runner, server)
    assert stats.breaker_state == "closed"
    assert stats.outcomes["client_error"] == 5
    assert stats.success_rate == 1.0


async def test_the_rate_limit_refuses_beyond_its_wait(
    runner: Runner, server: FaultServer, clock
) -> None:
    """With "2/minute" and no waiting, the third request is refused with a retry_after, and
    the server never sees it."""
    runner.make(clock=clock, policies=HostPolicy(rate_limit="2/minute", rate_limit_wait=0))
    for _ in range(2):
        await runner.send("GET", server.url("/ok"))
    with pytest.raises(RateLimitedError) as caught:
        await runner.send("GET", server.url("/ok"))
    assert caught.value.retry_after == pytest.approx(60)
    assert server.hits("/ok") == 2
    assert stats_of(runner, server).outcomes["rate_limited"] == 1


async def test_the_rate_limit_waits_for_its_turn(
    runner: Runner, server: FaultServer, clock: ManualClock
) -> None:
    """With "2/minute" and a wait of up to 90 s, the third request waits a minute of virtual
    time and is then sent."""
    policy = HostPolicy(rate_limit="2/minute", rate_limit_wait=90, total_timeout=120)
    runner.make(clock=clock, policies=policy)
    for _ in range(3):
        assert (await runner.send("GET", server.url("/ok"))).status_code == 200
    assert server.hits("/ok") == 3
    assert clock.monotonic() == pytest.approx(60)


async def test_the_total_timeout_bounds_the_rate_limit_wait(
    runner: Runner, server: FaultServer, clock
) -> None:
    """A wait for a token never passes the total timeout: refused at once when it would."""
    runner.make(clock=clock, policies=HostPolicy(rate_limit="1/minute", total_timeout=30))
    await runner.send("GET", server.url("/ok"))
    with pytest.raises(RateLimitedError):
        await runner.send("GET", server.url("/ok"))
    assert clock.sleeps == []


async def test_policies_apply_per_host(runner: Runner, server: FaultServer, clock) -> None:
    """An override for the server's host (with its port) replaces the default's attempts."""
    server.script("/flaky", 503)
    runner.make(
        clock=clock,
        policies={"*": HostPolicy(backoff=NO_WAIT), server.host: {"attempts": 5}},
    )
    await runner.send("GET", server.url("/flaky"))
    assert server.hits("/flaky") == 5
