"""ClientPool: one client per name, closed with the pool, connections rebuilt after errors."""

from __future__ import annotations

import httpx
import pytest

from buttress.errors import ConfigError
from buttress.resources import ClientPool, ClientRecreated
from buttress.testing import ManualClock, RecordingListener
from tests.servers import HttpServer, stopped_port


@pytest.fixture
def server() -> HttpServer:
    """A real local HTTP server (/ok answers 200)."""
    with HttpServer() as running:
        yield running  # type: ignore[misc]


def test_one_client_per_name(server: HttpServer) -> None:
    """The same name gives the same client; it talks to the real server through its base URL."""
    with ClientPool() as pool:
        client = pool.client("api", base_url=server.url(""), timeout=2)
        assert pool.client("api") is client
        assert pool.client("api", base_url=server.url(""), timeout=2) is client
        assert pool.client("other") is not client
        assert client.get("/ok").status_code == 200
        by_url = pool.client(server.url(""))
        assert by_url.get("/created").status_code == 201
        stats = {row.name: row for row in pool.stats()}
        assert stats["api"].requests == 1
        assert stats["api"].connection_errors == 0
        assert stats[server.url("")].base_url == server.url("")
    assert client.is_closed


def test_redefining_a_name_is_refused() -> None:
    """Asking for a name with other options raises ConfigError (no silent reconfiguration)."""
    with ClientPool() as pool:
        pool.client("api", base_url="http://127.0.0.1:1", timeout=2)
        with pytest.raises(ConfigError, match=r"clients\.api"):
            pool.client("api", base_url="http://127.0.0.1:2")
        with pytest.raises(ConfigError, match="transport"):
            pool.client("custom", transport=httpx.MockTransport(lambda r: httpx.Response(200)))


def test_connections_are_rebuilt_after_consecutive_errors() -> None:
    """After 3 refused connections in a row the transport is replaced (the old one closed) and
    ClientRecreated is emitted; the client object stays the same."""
    pool = ClientPool(max_connection_errors=3, clock=ManualClock())
    client = pool.client("down", base_url=f"http://127.0.0.1:{stopped_port()}")
    counter = client._transport.counter  # type: ignore[attr-defined]
    first = counter.inner
    with RecordingListener() as events:
        for _ in range(2):
            with pytest.raises(httpx.ConnectError):
                client.get("/")
        assert counter.inner is first
        with pytest.raises(httpx.ConnectError):
            client.get("/")
    assert counter.inner is not first
    assert first._pool.connections == []  # closed
    [event] = events.of(ClientRecreated)
    assert (event.source, event.errors, event.generation) == ("down", 3, 1)
    assert "ConnectError" in event.error
    assert pool.client("down") is client
    [row] = pool.stats()
    assert (row.requests, row.connection_errors, row.consecutive_errors, row.recreated) == (
        3,
        3,
        0,
        1,
    )
    pool.close()


def test_a_success_resets_the_count(server: HttpServer) -> None:
    """Errors separated by successes never reach the limit: nothing is rebuilt."""
    down = f"http://127.0.0.1:{stopped_port()}/"
    with ClientPool(max_connection_errors=2) as pool:
        client = pool.client("mixed")
        for _ in range(3):
            with pytest.raises(httpx.ConnectError):
                client.get(down)
            assert client.get(server.url("/ok")).status_code == 200
        [row] = pool.stats()
        assert (row.connection_errors, row.recreated, row.requests) == (3, 0, 6)


def test_http_errors_are_not_connection_errors(server: HttpServer) -> None:
    """A 500 answer is a response, not a broken connection: it never counts."""
    with ClientPool(max_connection_errors=1) as pool:
        client = pool.client("api", base_url=server.url(""))
        assert client.get("/error").status_code == 500
        [row] = pool.stats()
        assert (row.connection_errors, row.recreated) == (0, 0)


async def test_async_clients_are_rebuilt_and_closed(server: HttpServer) -> None:
    """Async clients count errors the same way; aclose() closes sync and async clients."""
    pool = ClientPool(max_connection_errors=2)
    down = pool.async_client("down", base_url=f"http://127.0.0.1:{stopped_port()}")
    up = pool.async_client("up", base_url=server.url(""))
    sync = pool.client("up", base_url=server.url(""))
    assert up is not sync  # sync and async clients are separate
    assert (await up.get("/ok")).status_code == 200
    with RecordingListener() as events:
        for _ in range(2):
            with pytest.raises(httpx.ConnectError):
                await down.get("/")
    assert [e.source for e in events.of(ClientRecreated)] == ["down"]
    rows = {(row.name, row.kind): row for row in pool.stats()}
    assert rows["down", "async"].recreated == 1
    assert rows["up", "async"].requests == 1
    await pool.aclose()
    assert [down.is_closed, up.is_closed, sync.is_closed] == [True, True, True]
    with pytest.raises(RuntimeError, match="closed"):
        pool.async_client("again")


async def test_async_context_manager_and_manual_rebuild(server: HttpServer) -> None:
    """arecreate() rebuilds on demand; `async with` closes at the end."""
    async with ClientPool() as pool:
        client = pool.async_client("api", base_url=server.url(""))
        await pool.arecreate("api")
        assert (await client.get("/ok")).status_code == 200
        assert pool.stats()[0].recreated == 1
    assert client.is_closed


def test_close_refuses_new_clients_and_manual_rebuild(server: HttpServer) -> None:
    """recreate() swaps the transport at once; after close() no client is handed out."""
    pool = ClientPool(defaults={"timeout": 2, "limits": httpx.Limits(max_connections=4)})
    client = pool.client("api", base_url=server.url(""))
    old = client._transport.counter.inner  # type: ignore[attr-defined]
    pool.recreate("api")
    assert client._transport.counter.inner is not old  # type: ignore[attr-defined]
    assert client.get("/ok").status_code == 200
    with pytest.raises(KeyError):
        pool.recreate("missing")
    pool.close()
    assert client.is_closed
    with pytest.raises(RuntimeError, match="closed"):
        pool.client("api")


def test_secrets_in_base_urls_are_masked() -> None:
    """A password in a base URL is masked in the stats and in errors."""
    with ClientPool() as pool:
        pool.client("api", base_url="http://user:hunter22@127.0.0.1:1")
        assert "hunter22" not in repr(pool.stats())
        with pytest.raises(ConfigError) as info:
            pool.client("api", base_url="http://user:hunter22@127.0.0.1:2")
        assert "hunter22" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"max_connection_errors": 0}, "max_connection_errors")]
)
def test_bad_options_are_refused(kwargs: dict[str, object], field: str) -> None:
    """A limit below 1 raises ConfigError naming the field; so does an empty name."""
    with pytest.raises(ConfigError, match=field):
        ClientPool(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="name"):
        ClientPool().client("")
