"""``GET /admin/reliability/limits``: every rate limiter, load shedder and work queue of the
registry with its current state, behind the read guard; empty lists while none is registered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette

from buttress import Registry
from buttress.errors import LoadShedError, StoreError
from buttress.ops._routes_limits import PATH
from buttress.ratelimit import (
    AdaptiveConcurrency,
    AdaptiveThrottle,
    ConcurrencyLimiter,
    FixedWindow,
    TokenBucket,
    WorkQueue,
)
from buttress.testing import ManualClock

from .conftest import VIEW, client_for

EMPTY: dict[str, list[object]] = {"limiters": [], "concurrency": [], "throttles": [], "queues": []}


async def _get(app: Starlette, **headers: str) -> Any:
    async with client_for(app) as client:
        response = await client.get(PATH, headers=headers or VIEW)
    assert response.status_code == 200, response.text
    return response.json()


async def test_nothing_registered_is_empty_lists(app: Starlette) -> None:
    """Without a limiter the route answers 200 with four empty lists (the dashboard hides its
    panel), and it needs a token like every admin read."""
    assert await _get(app) == EMPTY
    async with client_for(app) as client:
        assert (await client.get(PATH)).status_code == 401
        assert (await client.get(PATH + "?x=1", headers=VIEW)).status_code == 400


async def test_a_limiter_that_is_one_quota(
    registry: Registry, clock: ManualClock, make_app: Callable[..., Starlette]
) -> None:
    """A limiter's algorithm, parameters, decisions, keys and what is left of its quota now."""
    limiter = registry.limiter("partner", TokenBucket("2/s", burst=4), max_wait=0.5)
    for _ in range(5):
        limiter.allow()
    [found] = (await _get(make_app()))["limiters"]
    assert found == {
        "name": "partner",
        "algorithm": "token_bucket",
        "parameters": {"rate": 2.0, "burst": 4.0},
        "max_wait": 0.5,
        "keyed": False,
        "store": "memory",
        "lease": 0.0,
        "degraded": False,
        "allowed": 4,
        "refused": 1,
        "keys": 1,
        "waiting": 0,
        "limit": 4,
        "remaining": 0,
        "retry_after": pytest.approx(0.5),
        "reset_after": pytest.approx(2.0),
    }
    clock.advance(1.0)
    [found] = (await _get(make_app()))["limiters"]
    assert (found["remaining"], found["retry_after"]) == (2, 0.0)


async def test_a_keyed_limiter_shows_keys_not_a_quota(
    registry: Registry, make_app: Callable[..., Starlette]
) -> None:
    """A keyed limiter counts the keys it tracks; remaining is null (there is one per key) and
    the keys themselves (API tokens, addresses) never appear."""
    limiter = registry.limiter("clients", FixedWindow(2, 60), keyed=True)
    for key in ("token-alice-123", "token-bob-456", "token-bob-456", "token-bob-456"):
        limiter.allow(key)
    app = make_app()
    async with client_for(app) as client:
        text = (await client.get(PATH, headers=VIEW)).text
    assert "token-" not in text
    [found] = (await _get(app))["limiters"]
    assert (found["algorithm"], found["keyed"], found["keys"]) == ("fixed_window", True, 2)
    assert (found["allowed"], found["refused"], found["remaining"]) == (3, 1, None)
    assert found["parameters"] == {"limit": 2, "window": 60.0}


async def test_load_shedders_and_queues_with_their_snapshots(
    registry: Registry, clock: ManualClock, make_app: Callable[..., Starlette]
) -> None:
    """Concurrency limiters (fixed and adaptive), throttles and queues: options and snapshot,
    including a shedding limiter and a queue's depth by priority and oldest age."""
    fixed = registry.add(ConcurrencyLimiter(1, name="db", clock=clock))
    registry.add(AdaptiveConcurrency("aimd", max_limit=40, name="api", clock=clock))
    registry.add(AdaptiveThrottle(1.5, name="search", clock=clock))
    release = asyncio.Event()

    async def send(item: str) -> int:
        await release.wait()
        return len(item)

    queue = registry.add(WorkQueue(send, priorities=2, max_size=5, name="emails", clock=clock))

    def nested() -> None:
        with pytest.raises(LoadShedError):
            fixed.call(lambda: None)

    futures = [queue.submit("a", priority=1)]
    await asyncio.sleep(0.01)  # the worker takes it and waits for the release
    futures += [queue.submit("bb", priority=1), queue.submit("ccc", priority=0)]
    clock.advance(2.0)
    fixed.call(nested)  # shedding now: a refusal less than a second ago
    view = await _get(make_app())
    assert [c["name"] for c in view["concurrency"]] == ["api", "db"]
    api, db = view["concurrency"]
    assert (db["algorithm"], db["limit"], db["rejected"], db["shedding"]) == ("fixed", 1, 1, True)
    assert db["options"] == {"max": 1}
    assert (api["algorithm"], api["limit"], api["max_limit"]) == ("aimd", 20, 40)
    [throttle] = view["throttles"]
    assert (throttle["probability"], throttle["options"]["k"]) == (0.0, 1.5)
    [emails] = view["queues"]
    assert (emails["depth"], emails["depth_by_priority"], emails["max_size"]) == (2, [1, 1], 5)
    assert (emails["workers"], emails["busy"], emails["submitted"]) == (1, 1, 3)
    assert emails["oldest_age"] == pytest.approx(2.0)
    assert emails["options"]["priorities"] == 2
    release.set()
    await queue.close(drain=True)
    assert [await f for f in futures] == [1, 2, 3]


class _StoreDown:
    """A fleet limiter whose store cannot be reached (a fault stand-in: peek raises)."""

    name = "global"
    algorithm = FixedWindow(10, 1)

    class options:
        max_wait = 0.0

    def snapshot(self) -> Any:
        from buttress.ratelimit import RateLimiterSnapshot

        return RateLimiterSnapshot(
            "global", self.algorithm.describe(), 0, 0, 7, 0, store="redis://:***@cache:6379/0"
        )

    def peek(self, key: str = "") -> Any:
        raise StoreError("peek", "redis://:hunter2@cache:6379/0", "Connection refused")


async def test_an_unreadable_fleet_limiter_reports_why(
    registry: Registry, make_app: Callable[..., Starlette]
) -> None:
    """A limiter whose store is down still lists its counters, with the error (URL password
    masked) instead of the quota; the answer stays 200."""
    registry.attach("limiter", _StoreDown(), "global")
    [found] = (await _get(make_app()))["limiters"]
    assert (found["store"], found["allowed"], found["remaining"]) == ("fleet", 7, None)
    assert found["error"].startswith("StoreError")
    assert "hunter2" not in found["error"]


async def test_the_route_is_in_the_openapi_document(app: Starlette) -> None:
    """The OpenAPI document describes the route as an admin read with its four lists."""
    async with client_for(app) as client:
        doc = (await client.get("/admin/openapi.json")).json()
    op = doc["paths"][PATH]["get"]
    assert op["security"] == [{"bearerAuth": []}]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["limiters", "concurrency", "throttles", "queues"]
    assert "remaining" in schema["properties"]["limiters"]["items"]["properties"]
