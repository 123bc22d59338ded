"""Fixtures for the ops app: a registry, tokens, a manual clock, and an app with a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from buttress import Registry
from buttress.health import HealthRegistry
from buttress.ops import create_app, generate_token
from buttress.testing import ManualClock

OPERATOR, OPERATOR_SHA = generate_token()
VIEWER, VIEWER_SHA = generate_token()
TOKENS = [("alice", "operator", OPERATOR_SHA), ("victor", "viewer", VIEWER_SHA)]


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


OP = bearer(OPERATOR)
VIEW = bearer(VIEWER)


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when told to."""
    return ManualClock(start=100.0)


@pytest.fixture
def registry(clock: ManualClock) -> Registry:
    """A registry with two breakers and a pipeline."""
    registry = Registry(clock=clock)
    registry.breaker("db", minimum_calls=2, window=4, open_for=30)
    registry.breaker("payments")
    registry.timeout("fast", 1.0)
    registry.pipeline("api", "fast", registry.get("db", "breaker"))
    return registry


@pytest.fixture
def health(clock: ManualClock) -> HealthRegistry:
    """A health registry with the process check and a passing readiness check."""
    health = HealthRegistry(clock=clock)
    for name in [c.name for c in health.checks()]:
        if name != "process":  # built-ins measuring real time (loop lag) would make tests flaky
            health.remove(name)

    async def cache() -> bool:
        return True

    health.add(cache, component_type="datastore")
    return health


@pytest.fixture
def make_app(
    registry: Registry, health: HealthRegistry, clock: ManualClock
) -> Iterator[Callable[..., Starlette]]:
    """Build ops apps (in-memory state, the test tokens, no scheduler unless asked) and close
    them after the test."""
    apps: list[Starlette] = []

    def make(**options: Any) -> Starlette:
        options.setdefault("health", health)
        options.setdefault("tokens", TOKENS)
        options.setdefault("state_dir", ":memory:")
        options.setdefault("clock", clock)
        # Jobs sleep on the clock: on a ManualClock they would race virtual time ahead.
        options.setdefault("scheduler", None)
        app = create_app(registry, **options)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.state.ops.close()


@pytest.fixture
def app(make_app: Callable[..., Starlette]) -> Starlette:
    """The ops app with default settings."""
    return make_app()


def client_for(app: Any, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """An in-process client for ``app`` (requests come from ``address``)."""
    transport = httpx.ASGITransport(app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://ops.test")


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client for ``app``."""
    async with client_for(app) as client:
        yield client
