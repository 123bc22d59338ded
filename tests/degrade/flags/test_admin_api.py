"""The admin API's flag routes: listing, creation, changes and deletion, guarded and audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from buttress import Registry
from buttress.degrade.flags import Flag, FlagStore
from buttress.health import HealthRegistry
from buttress.ops import create_app, generate_token
from buttress.testing import ManualClock

API = "/admin/reliability"
OPERATOR, OPERATOR_SHA = generate_token()
VIEWER, VIEWER_SHA = generate_token()
TOKENS = [("alice", "operator", OPERATOR_SHA), ("victor", "viewer", VIEWER_SHA)]
OP = {"Authorization": f"Bearer {OPERATOR}"}
VIEW = {"Authorization": f"Bearer {VIEWER}"}


@asynccontextmanager
async def _client(registry: Registry, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of an ops app for ``registry``; the app is closed afterwards."""
    app = create_app(
        registry,
        health=HealthRegistry(clock=clock),
        tokens=TOKENS,
        state_dir=":memory:",
        clock=clock,
        scheduler=None,
    )
    transport = httpx.ASGITransport(app, client=("127.0.0.1", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://ops.test") as client:
            yield client
    finally:
        app.state.ops.close()


@pytest.fixture
async def client(flags: FlagStore, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an ops app whose registry has ``flags`` attached, with one flag in it."""
    flags.create(Flag("checkout", enabled=True, rollout=20, description="new checkout"))
    registry = Registry(clock=clock)
    registry.attach("flags", flags, "default")
    async with _client(registry, clock) as client:
        yield client


async def test_list_and_get(client: httpx.AsyncClient) -> None:
    """A viewer lists the flags with their status and reads one; an unknown one is a 404."""
    listed = await client.get(f"{API}/flags", headers=VIEW)
    assert listed.status_code == 200
    body = listed.json()
    assert body["namespace"] == "default"
    assert [(f["name"], f["status"], f["rollout"]) for f in body["flags"]] == [
        ("checkout", "partial", 20)
    ]
    one = await client.get(f"{API}/flags/checkout", headers=VIEW)
    assert one.json()["description"] == "new checkout"
    assert (await client.get(f"{API}/flags/nope", headers=VIEW)).status_code == 404


async def test_create_is_audited_twice(client: httpx.AsyncClient, flags: FlagStore) -> None:
    """POST creates a flag (201), in the ops audit log and the flag's history, as the token."""
    body = {"name": "search", "enabled": True, "rollout": 5, "reason": "launch"}
    response = await client.post(f"{API}/flags", headers=OP, json=body)
    assert response.status_code == 201
    created = response.json()
    assert created["after"]["rollout"] == 5
    assert flags.get("search").rollout == 5
    audit = (await client.get(f"{API}/audit", headers=VIEW)).json()["entries"][0]
    assert (audit["actor"], audit["action"], audit["target"], audit["reason"]) == (
        "alice",
        "flag.create",
        "search",
        "launch",
    )
    assert audit["id"] == created["audit_id"]
    history = (await client.get(f"{API}/flags/search/history", headers=VIEW)).json()
    assert [(c["actor"], c["action"]) for c in history["changes"]] == [("alice", "create")]
    again = await client.post(f"{API}/flags", headers=OP, json={"name": "search"})
    assert again.status_code == 409


async def test_patch_changes_fields(client: httpx.AsyncClient, flags: FlagStore) -> None:
    """PATCH changes the given fields only (the rollout slider, rules) and answers before/after."""
    response = await client.patch(
        f"{API}/flags/checkout",
        headers=OP,
        json={"rollout": 60, "rules": [{"attribute": "tenant", "values": ["acme"]}]},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["before"]["rollout"], body["after"]["rollout"]) == (20, 60)
    assert flags.enabled("checkout", tenant="acme", user="x")
    assert flags.get("checkout").description == "new checkout"


async def test_bad_input_names_the_field(client: httpx.AsyncClient) -> None:
    """An invalid field answers 400 naming it; nothing changes."""
    bad = await client.patch(f"{API}/flags/checkout", headers=OP, json={"rollout": 101})
    assert bad.status_code == 400
    assert "rollout" in bad.json()["detail"]
    unknown = await client.patch(f"{API}/flags/checkout", headers=OP, json={"colour": 1})
    assert unknown.status_code == 400
    created = await client.post(f"{API}/flags", headers=OP, json={"name": "x", "off_at": "soon"})
    assert created.status_code == 400
    assert (await client.patch(f"{API}/flags/ghost", headers=OP, json={})).status_code == 404


@pytest.mark.parametrize(
    ("action", "field", "value"),
    [("disable", "enabled", False), ("kill", "killed", True), ("enable", "enabled", True)],
)
async def test_actions(
    client: httpx.AsyncClient, flags: FlagStore, action: str, field: str, value: bool
) -> None:
    """POST .../{action} applies the toggle and records the reason."""
    response = await client.post(
        f"{API}/flags/checkout/{action}", headers=OP, json={"reason": "drill"}
    )
    assert response.status_code == 200
    assert getattr(flags.get("checkout"), field) is value


async def test_delete(client: httpx.AsyncClient, flags: FlagStore) -> None:
    """DELETE removes the flag and answers its last state."""
    response = await client.delete(f"{API}/flags/checkout", headers=OP)
    assert response.status_code == 200
    assert response.json()["after"] is None
    assert "checkout" not in flags


async def test_mutations_need_the_operator_role(client: httpx.AsyncClient) -> None:
    """A viewer may read but not change flags; no token is a 401."""
    assert (await client.post(f"{API}/flags/checkout/kill", headers=VIEW)).status_code == 403
    assert (await client.delete(f"{API}/flags/checkout", headers=VIEW)).status_code == 403
    assert (await client.get(f"{API}/flags")).status_code == 401


async def test_no_flag_store_no_routes(clock: ManualClock) -> None:
    """Without a flag store in the registry, the app has no flag routes and documents none."""
    async with _client(Registry(clock=clock), clock) as client:
        assert (await client.get(f"{API}/flags", headers=VIEW)).status_code == 404
        doc = (await client.get("/admin/openapi.json")).json()
        assert not [path for path in doc["paths"] if "/flags" in path]
