"""``GET /admin/reliability/http-clients``: every registered HTTP client's per-host statistics,
behind the read guard; an empty list while no client is registered."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from starlette.applications import Starlette

from buttress import Registry
from buttress.http import Client, HostPolicy
from buttress.ops._routes_http import PATH

from .conftest import VIEW, client_for


def _upstream(request: httpx.Request) -> httpx.Response:
    """200 from most hosts; 503 from hosts named down."""
    return httpx.Response(503 if request.url.host.startswith("down") else 200)


@pytest.fixture
def partners(registry: Registry) -> Iterator[Client]:
    """An HTTP client registered as ``partners`` that requested two hosts (one failing)."""
    client = Client(
        transport=httpx.MockTransport(_upstream),
        registry=registry,
        name="partners",
        policies=HostPolicy(attempts=1, breaker=False),
    )
    for host in ("api.partner.test", "down.partner.test"):
        for _ in range(10):
            client.get(f"https://{host}/orders?token=s3cret")
    yield client
    client.close()


async def test_no_client_is_an_empty_list(app: Starlette) -> None:
    """Without a registered client the list is empty (the dashboard hides its panel)."""
    async with client_for(app) as client:
        response = await client.get(PATH, headers=VIEW)
    assert response.status_code == 200
    assert response.json() == {"clients": []}


async def test_hosts_and_their_statistics(
    make_app: Callable[..., Starlette], partners: Client
) -> None:
    """Each host of each client: requests, success rate, percentiles, breaker and status."""
    async with client_for(make_app()) as client:
        response = await client.get(PATH, headers=VIEW)
    assert response.status_code == 200
    [found] = response.json()["clients"]
    assert found["name"] == "partners"
    assert found["status"] == "fail"
    hosts = {host["host"]: host for host in found["hosts"]}
    assert list(hosts) == ["api.partner.test", "down.partner.test"]
    api, down = hosts["api.partner.test"], hosts["down.partner.test"]
    assert (api["requests"], api["success_rate"], api["status"]) == (10, 1.0, "pass")
    assert (down["failures"], down["success_rate"], down["status"]) == (10, 0.0, "fail")
    assert down["outcomes"]["server_error"] == 10
    assert api["breaker_state"] is None
    assert {"latency_p50", "latency_p90", "latency_p99", "reason"} <= set(api)
    assert "s3cret" not in response.text  # paths and queries are never part of the stats


async def test_a_client_registered_later_appears(
    make_app: Callable[..., Starlette], registry: Registry
) -> None:
    """The route exists before any client: one registered after the app shows up."""
    app = make_app()
    async with client_for(app) as client:
        assert (await client.get(PATH, headers=VIEW)).json() == {"clients": []}
        with Client(transport=httpx.MockTransport(_upstream), registry=registry, name="late"):
            response = await client.get(PATH, headers=VIEW)
    assert response.status_code == 200
    assert [c["name"] for c in response.json()["clients"]] == ["late"]
    assert response.json()["clients"][0]["hosts"] == []


async def test_reads_need_a_token_and_a_clean_query(app: Starlette, partners: Client) -> None:
    """No token is a 401, an unknown query parameter a 400."""
    async with client_for(app) as client:
        assert (await client.get(PATH)).status_code == 401
        response = await client.get(f"{PATH}?host=api.partner.test", headers=VIEW)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
