"""Building clients: wrapping existing httpx clients, transports used directly, the registry,
and the bound on the number of hosts."""

from __future__ import annotations

import itertools
import threading

import httpx
import pytest

from buttress import Registry
from buttress.errors import ConfigError
from buttress.http import (
    OTHER,
    AsyncClient,
    AsyncResilientTransport,
    Client,
    ClientResilience,
    HostPolicy,
    ResilientTransport,
    resilience_of,
    wrap,
)
from buttress.retry import Backoff
from tests.http.conftest import FaultServer

NO_WAIT = HostPolicy(backoff=Backoff.constant(0))


def answer(status: int):
    """A MockTransport handler answering ``status`` to everything."""
    return lambda request: httpx.Response(status, text=str(status))


def test_wrapping_a_sync_client_keeps_its_settings(server: FaultServer, clock) -> None:
    """wrap() puts the pipeline around an existing client's transport; its base_url and
    headers keep working, and retries now happen."""
    server.script("/flaky", 503, 200)
    with httpx.Client(base_url=server.url(""), headers={"X-Team": "ops"}) as client:
        resilience = wrap(client, policies=NO_WAIT, name="billing", clock=clock)
        response = client.get("/flaky")
        assert response.status_code == 200
        assert resilience_of(client) is resilience
    assert server.requests[0][2]["X-Team"] == "ops"
    assert [s.host for s in resilience.snapshot()] == [server.host]
    assert resilience.snapshot()[0].client == "billing"


async def test_wrapping_an_async_client(server: FaultServer, clock) -> None:
    """wrap() works on an httpx.AsyncClient the same way."""
    server.script("/flaky", 502, 200)
    async with httpx.AsyncClient() as client:
        resilience = wrap(client, policies=NO_WAIT, clock=clock)
        assert (await client.get(server.url("/flaky"))).status_code == 200
    assert resilience.snapshot()[0].retries == 1


def test_wrapping_twice_is_refused() -> None:
    """A client already wrapped (or built by buttress.http) cannot be wrapped again."""
    with Client() as client, pytest.raises(ConfigError, match="already wrapped"):
        wrap(client)


def test_wrap_refuses_what_is_not_an_httpx_client() -> None:
    """wrap() names the bad argument; resilience_of() refuses a plain client."""
    with pytest.raises(ConfigError) as caught:
        wrap("http://example.com")  # type: ignore[arg-type]
    assert caught.value.field == "client"
    with httpx.Client() as plain, pytest.raises(ConfigError, match="not wrapped"):
        resilience_of(plain)


def test_wrap_refuses_options_next_to_a_resilience() -> None:
    """Options that a given ClientResilience already has are refused, naming the first."""
    shared = ClientResilience()
    with httpx.Client() as plain, pytest.raises(ConfigError) as caught:
        wrap(plain, resilience=shared, name="other")
    assert caught.value.field == "name"


def test_mounted_transports_are_wrapped_too() -> None:
    """A transport mounted for a pattern goes through the pipeline as well."""
    mounted = httpx.MockTransport(answer(503))
    with Client(
        policies=NO_WAIT,
        mounts={"https://api.example.com": mounted},
        transport=httpx.MockTransport(answer(200)),
    ) as client:
        assert client.get("https://api.example.com/x").status_code == 503
        assert client.get("https://other.example.com/x").status_code == 200
        stats = {s.host: s for s in client.snapshot()}
    assert stats["api.example.com"].attempts == 3
    assert stats["other.example.com"].attempts == 1


def test_one_resilience_can_serve_several_transports() -> None:
    """Two transports sharing a ClientResilience share its hosts' breakers and statistics."""
    shared = ClientResilience(NO_WAIT, name="shared")
    one = ResilientTransport(httpx.MockTransport(answer(200)), resilience=shared)
    two = ResilientTransport(httpx.MockTransport(answer(200)), resilience=shared)
    with httpx.Client(transport=one) as a, httpx.Client(transport=two) as b:
        a.get("http://h.example/")
        b.get("http://h.example/")
    assert shared.snapshot()[0].requests == 2


async def test_the_async_transport_can_be_used_directly() -> None:
    """AsyncResilientTransport is a plain httpx transport for any AsyncClient."""
    transport = AsyncResilientTransport(httpx.MockTransport(answer(204)), name="direct")
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("http://h.example/")).status_code == 204
    assert transport.resilience.snapshot()[0].outcomes["success"] == 1


def test_a_transport_refuses_a_wrong_inner_transport() -> None:
    """A sync transport cannot wrap an async one (and the other way round)."""
    with pytest.raises(ConfigError) as caught:
        ResilientTransport(httpx.AsyncHTTPTransport())  # type: ignore[arg-type]
    assert caught.value.field == "transport"
    with pytest.raises(ConfigError):
        AsyncResilientTransport(httpx.HTTPTransport())  # type: ignore[arg-type]


def test_the_registry_sees_the_client_and_its_hosts_policies() -> None:
    """With registry=, the client is registered as an http_client and each host's breaker and
    rate limiter under "<client>:<host>"; describe() shows the policies."""
    registry = Registry()
    policy = HostPolicy(rate_limit="10/second")
    with Client(
        name="github",
        policies=policy,
        registry=registry,
        transport=httpx.MockTransport(answer(200)),
    ) as client:
        client.get("https://api.github.com/")
    assert registry.of_kind("http_client") == registry.http_clients() == [client.resilience]
    assert [b.name for b in registry.breakers()] == ["github:api.github.com"]
    assert registry.get("github:api.github.com", "limiter") is not None
    described = registry.describe()["http_client"][0]
    assert described["name"] == "github"
    assert described["hosts"]["api.github.com"]["policy"]["rate_limit"]["limit"] == 10


def test_registering_later_adds_the_hosts_seen_so_far() -> None:
    """register() after requests were made registers the breakers built meanwhile."""
    resilience = ClientResilience(name="late")
    with httpx.Client(
        transport=ResilientTransport(httpx.MockTransport(answer(200)), resilience=resilience)
    ) as client:
        client.get("http://a.example/")
    registry = Registry()
    resilience.register(registry)
    assert [b.name for b in registry.breakers()] == ["late:a.example"]


def test_two_clients_cannot_share_a_name_in_one_registry() -> None:
    """A second client registered under a taken name is refused."""
    registry = Registry()
    Client(name="api", registry=registry).close()
    with pytest.raises(ConfigError):
        Client(name="api", registry=registry)


def test_hosts_beyond_max_hosts_share_one_pipeline() -> None:
    """Unnamed hosts beyond max_hosts are counted together as "(other)"; a host named in the
    policies always gets its own pipeline."""
    policies = {"*": {}, "named.example": {"attempts": 1}}
    transport = httpx.MockTransport(answer(200))
    with Client(policies=policies, max_hosts=2, transport=transport) as client:
        for index in range(5):
            client.get(f"http://h{index}.example/")
        client.get("http://named.example/")
        hosts = client.resilience.hosts()
        stats = {s.host: s.requests for s in client.snapshot()}
    assert hosts == sorted([OTHER, "h0.example", "h1.example", "named.example"])
    assert stats[OTHER] == 3


def test_the_port_is_part_of_the_host() -> None:
    """Two ports of one address are two hosts, each with its own breaker."""
    transport = httpx.MockTransport(answer(200))
    with Client(transport=transport) as client:
        client.get("http://127.0.0.1:8001/")
        client.get("http://127.0.0.1:8002/")
        client.get("http://127.0.0.1/")
        assert client.resilience.hosts() == ["127.0.0.1", "127.0.0.1:8001", "127.0.0.1:8002"]


async def test_async_client_keeps_httpx_options() -> None:
    """AsyncClient passes httpx's own options through (base_url here)."""
    async with AsyncClient(
        base_url="http://h.example", transport=httpx.MockTransport(answer(200))
    ) as client:
        response = await client.get("/path")
    assert str(response.request.url) == "http://h.example/path"


def test_counts_are_exact_under_threads() -> None:
    """Eight threads sending 25 requests each through one client: 200 requests counted, the
    outcomes split exactly as answered."""
    lock = threading.Lock()
    served = itertools.count()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            number = next(served)
        return httpx.Response(404 if number % 4 == 0 else 200)

    policy = HostPolicy(attempts=1, breaker=False)
    with Client(policies=policy, transport=httpx.MockTransport(handler)) as client:

        def work() -> None:
            for _ in range(25):
                client.get("http://h.example/")

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = client.snapshot()[0]
    assert (stats.requests, stats.attempts) == (200, 200)
    assert (stats.outcomes["success"], stats.outcomes["client_error"]) == (150, 50)
    assert stats.window_requests == 200
