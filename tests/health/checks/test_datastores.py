"""PostgreSQL and Redis checks against the real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from buttress.errors import ConfigError
from buttress.health import Status
from buttress.health.checks import postgres_check, redis_check

from .conftest import Runner

PASSWORD = "Sup3r-s3cret-pw"


def _with_credentials(url: str, user: str, password: str, port: int | None = None) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password}@{host}:{port if port is not None else parts.port or 0}"
    return urlunsplit(parts._replace(netloc=netloc))


def _pg_dsn(dsn: str, **params: object) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    return make_conninfo(**{**conninfo_to_dict(dsn), **params})


# -- PostgreSQL ---------------------------------------------------------------------------------


async def test_postgres_passes_with_latency_and_server_version(run: Runner, postgres_dsn: str):
    """SELECT 1 passes; latency in ms and the server version are reported."""
    check = postgres_check(dsn=postgres_dsn)
    result = await run(check)
    assert result.status is Status.PASS, result.output
    assert result.observed_unit == "ms"
    assert isinstance(result.observed_value, float)
    assert result.observed_value > 0
    assert result.details["server_version"][0].isdigit()
    assert {"database", "connect_ms", "query_ms"} <= set(result.details)
    assert (check.component_type, check.measurement, check.key) == (
        "datastore",
        "responseTime",
        "postgres:responseTime",
    )


async def test_postgres_latency_thresholds(run: Runner, postgres_dsn: str):
    """A latency above warn_above warns; above fail_above fails."""
    warned = await run(postgres_check(dsn=postgres_dsn, warn_above=0))
    failed = await run(postgres_check(dsn=postgres_dsn, warn_above=0, fail_above=0))
    assert warned.status is Status.WARN
    assert "above 0 ms" in warned.output
    assert failed.status is Status.FAIL


async def test_postgres_bad_credentials_fail_without_leaking_the_password(
    run: Runner, postgres_dsn: str
):
    """Refused credentials fail, and the password shows nowhere (the role does not exist)."""
    dsn = _pg_dsn(postgres_dsn, user="buttress_no_such_role", password=PASSWORD)
    result = await run(postgres_check(dsn=dsn))
    assert result.status is Status.FAIL
    assert "buttress_no_such_role" in result.output
    assert PASSWORD not in result.output
    assert PASSWORD not in repr(result.details)


async def test_postgres_refused_port_fails(run: Runner, stopped_port: int):
    """Nothing listening: fail at once, with no password in the output."""
    dsn = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{stopped_port}/test"
    result = await run(postgres_check(dsn=dsn))
    assert result.status is Status.FAIL
    assert result.output.startswith("postgres: ")
    assert PASSWORD not in result.output


async def test_postgres_timeout_fails(run: Runner, silent_port: int):
    """A server that never answers fails at the check's timeout."""
    dsn = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{silent_port}/test"
    result = await run(postgres_check(dsn=dsn, timeout=0.1))
    assert result.status is Status.FAIL
    assert result.output == "postgres: timed out after 0.1s"


@pytest.fixture
async def async_pool(postgres_dsn: str) -> AsyncIterator[object]:
    """An open psycopg_pool AsyncConnectionPool on the test database."""
    psycopg_pool = pytest.importorskip("psycopg_pool")
    pool = psycopg_pool.AsyncConnectionPool(postgres_dsn, min_size=1, max_size=2, open=False)
    await pool.open(wait=True, timeout=5)
    try:
        yield pool
    finally:
        await pool.close()


async def test_postgres_with_an_async_pool_reports_pool_statistics(run: Runner, async_pool):
    """A given AsyncConnectionPool is used, and its statistics go into details."""
    result = await run(postgres_check(pool=async_pool))
    assert result.status is Status.PASS, result.output
    assert result.details["pool"]["pool_max"] == 2
    assert "acquire_ms" in result.details
    assert result.details["server_version"]


async def test_postgres_with_a_sync_pool_runs_it_in_a_thread(run: Runner, postgres_dsn: str):
    """A sync ConnectionPool works too (borrowed in a worker thread)."""
    psycopg_pool = pytest.importorskip("psycopg_pool")
    with psycopg_pool.ConnectionPool(postgres_dsn, min_size=1, max_size=1, open=True) as pool:
        result = await run(postgres_check(pool=pool))
    assert result.status is Status.PASS, result.output
    assert result.details["pool"]["pool_max"] == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "dsn"),
        ({"dsn": "postgresql://x", "pool": object()}, "dsn"),
        ({"dsn": 5}, "dsn"),
        ({"dsn": f"host=db password={PASSWORD} garbage"}, "dsn"),
        ({"dsn": f"host=db password='{PASSWORD}"}, "dsn"),
        ({"pool": object()}, "pool"),
        ({"dsn": "postgresql://x", "warn_above": -1}, "warn_above"),
        ({"dsn": "postgresql://x", "warn_above": 10, "fail_above": 5}, "warn_above"),
    ],
)
def test_postgres_options_are_validated(kwargs, field):
    """Bad options (an unparsable DSN too) raise ConfigError naming the field, no password."""
    with pytest.raises(ConfigError) as info:
        postgres_check(**kwargs)
    assert info.value.field == field
    assert PASSWORD not in str(info.value)


# -- Redis --------------------------------------------------------------------------------------


async def test_redis_passes_with_latency_clients_and_memory(run: Runner, redis_url: str):
    """PING passes; latency in ms, clients and memory are reported."""
    check = redis_check(url=redis_url)
    result = await run(check)
    assert result.status is Status.PASS, result.output
    assert result.observed_unit == "ms"
    assert result.observed_value > 0
    assert result.details["connected_clients"] >= 1
    assert result.details["used_memory_mib"] > 0
    assert result.details["redis_version"]
    assert check.key == "redis:responseTime"
    assert check.component_type == "datastore"


async def test_redis_with_a_given_client_leaves_it_open(run: Runner, redis_url: str):
    """A given client is used and stays usable after the check."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        result = await run(redis_check(client=client))
        assert result.status is Status.PASS, result.output
        assert await client.ping()
    finally:
        await client.aclose()


async def test_redis_memory_thresholds_against_maxmemory(run: Runner, redis_url: str):
    """With maxmemory set, used memory is a percent of it, graded by the memory thresholds."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        try:
            original = (await client.config_get("maxmemory"))["maxmemory"]
        except Exception as exc:  # managed servers may forbid CONFIG
            pytest.skip(f"CONFIG GET is not allowed: {exc}")
        used = (await client.info("memory"))["used_memory"]
        # a GiB of headroom: nobody else's writes can hit the limit while it is set
        await client.config_set("maxmemory", used + 2**30)
        try:
            passed = await run(redis_check(client=client))
            warned = await run(redis_check(client=client, memory_warn_above=0.001))
            failed = await run(
                redis_check(client=client, memory_warn_above=0.001, memory_fail_above=0.002)
            )
        finally:
            await client.config_set("maxmemory", original)
    finally:
        await client.aclose()
    assert passed.status is Status.PASS
    assert 0 < passed.details["memory_percent"] < 1
    assert passed.details["maxmemory_mib"] > 1024
    assert warned.status is Status.WARN
    assert "of maxmemory" in warned.output
    assert failed.status is Status.FAIL


async def test_redis_latency_thresholds(run: Runner, redis_url: str):
    """A PING slower than warn_above warns; than fail_above fails."""
    assert (await run(redis_check(url=redis_url, warn_above=0))).status is Status.WARN
    failed = await run(redis_check(url=redis_url, fail_above=0))
    assert failed.status is Status.FAIL
    assert "above 0 ms" in failed.output


async def test_redis_wrong_password_fails_without_leaking_it(run: Runner, redis_url: str):
    """Rejected credentials fail, and the password shows nowhere."""
    url = _with_credentials(redis_url, "buttress-no-such-user", PASSWORD)
    result = await run(redis_check(url=url))
    assert result.status is Status.FAIL
    assert PASSWORD not in result.output
    assert PASSWORD not in repr(result.details)


async def test_redis_refused_port_fails(run: Runner, stopped_port: int):
    """Nothing listening: fail with 'connection refused', no retries."""
    result = await run(redis_check(url=f"redis://:{PASSWORD}@127.0.0.1:{stopped_port}/15"))
    assert result.status is Status.FAIL
    assert result.output == "redis: connection refused"


async def test_redis_timeout_fails(run: Runner, silent_port: int):
    """A server that never answers fails at the check's timeout."""
    result = await run(redis_check(url=f"redis://127.0.0.1:{silent_port}/15", timeout=0.1))
    assert result.status is Status.FAIL
    assert "timed out" in result.output


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "url"),
        ({"url": f"http://u:{PASSWORD}@h"}, "url"),
        ({"client": object()}, "client"),
        ({"url": "redis://h", "memory_warn_above": 101}, "memory_warn_above"),
        (
            {"url": "redis://h", "memory_warn_above": 90, "memory_fail_above": 80},
            "memory_warn_above",
        ),
        ({"url": "redis://h", "timeout": 0}, "timeout"),
    ],
)
def test_redis_options_are_validated(kwargs, field):
    """Bad options raise ConfigError naming the field, with no password in the message."""
    with pytest.raises(ConfigError) as info:
        redis_check(**kwargs)
    assert info.value.field == field
    assert PASSWORD not in str(info.value)
