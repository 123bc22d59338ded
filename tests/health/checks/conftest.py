"""Fixtures for the built-in checks: real servers, and a way to run a check's function."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator

import pytest

from buttress.health import Check, CheckResult
from tests import servers

Runner = Callable[[Check], Awaitable[CheckResult]]


async def _run(check: Check) -> CheckResult:
    result = check.fn()
    if inspect.isawaitable(result):
        result = await result
    assert isinstance(result, CheckResult), result
    return result


@pytest.fixture
def run() -> Runner:
    """Run a check's function directly (awaited if async), without a registry."""
    return _run


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The test PostgreSQL DSN; skips (fails under CI=true) when the server is unreachable."""
    return servers.postgres_dsn()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis URL; skips (fails under CI=true) when the server is unreachable."""
    return servers.redis_url()


@pytest.fixture
def http_server() -> Iterator[servers.HttpServer]:
    """A real HTTP server on 127.0.0.1 (paths /ok, /created, /error, /redirect, /slow)."""
    with servers.HttpServer() as server:
        yield server


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with servers.SilentServer() as server:
        yield server.port


@pytest.fixture
def stopped_port() -> int:
    """A port where nothing listens: connections are refused."""
    return servers.stopped_port()
