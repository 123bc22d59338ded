"""PostgreSQL and Redis checks. The drivers are imported when a check runs, never at import."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Unpack

from buttress._redact import redact
from buttress.errors import ConfigError
from buttress.health._model import Check, CheckResult, Status, grade
from buttress.health.checks._common import (
    CheckOptions,
    common,
    elapsed_ms,
    error_text,
    mib,
    over,
    passwords_in,
    require,
    scrub,
    thresholds,
    worst,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["postgres_check", "redis_check"]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def postgres_check(
    name: str = "postgres",
    *,
    dsn: str | None = None,
    pool: Any = None,
    warn_above: float | None = None,
    fail_above: float | None = None,
    **options: Unpack[CheckOptions],
) -> Check:
    """PostgreSQL answers ``SELECT 1``: latency in ms (connection included when it connects).

    Give ``dsn`` (a new connection each run, psycopg 3 async) or ``pool`` (a ``psycopg_pool``
    ``AsyncConnectionPool`` or ``ConnectionPool``; its ``get_stats()`` go into details).
    ``warn_above``/``fail_above`` are latency thresholds in ms (default none). Details:
    server version, database, connect and query times. Defaults: component_type "datastore",
    measurement "responseTime"; generic options as in ``CheckOptions``.
    """
    base = common(name, options, component_type="datastore", measurement="responseTime")
    warn, fail = thresholds(warn_above, fail_above)
    if (dsn is None) == (pool is None):
        raise ConfigError("dsn", redact(str(dsn)), "give exactly one of dsn= or pool=")
    if dsn is not None and (not isinstance(dsn, str) or not dsn.strip()):
        raise ConfigError("dsn", type(dsn).__name__, "must be a non-empty connection string")
    if pool is not None and not (
        callable(getattr(pool, "connection", None)) and callable(getattr(pool, "get_stats", None))
    ):
        raise ConfigError("pool", type(pool).__name__, "must be a psycopg_pool connection pool")
    require("psycopg", "postgres", "postgres")
    secrets = passwords_in(dsn)
    if dsn is not None:
        secrets = (*secrets, *_dsn_password(dsn))
    probe = _Postgres(dsn, pool, base.timeout, warn, fail, secrets)
    return base.check(probe.run)


def _dsn_password(dsn: str) -> tuple[str, ...]:
    """The DSN's password as libpq reads it; ConfigError when the DSN does not parse."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        reason = scrub(str(exc), passwords_in(dsn))
        raise ConfigError(
            "dsn", redact(dsn), f"is not a valid connection string ({reason})"
        ) from None
    password = params.get("password")
    return (str(password),) if password and len(str(password)) >= 3 else ()


@dataclass(frozen=True, slots=True)
class _Postgres:
    dsn: str | None
    pool: Any
    timeout: float
    warn: float | None
    fail: float | None
    secrets: tuple[str, ...]

    async def run(self) -> CheckResult:
        """Connect (or borrow from the pool), run ``SELECT 1``, and grade the latency."""
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                if self.pool is None:
                    details = await self._connect()
                elif hasattr(type(self.pool), "__aenter__"):
                    details = await self._borrow_async()
                else:
                    details = await asyncio.to_thread(self._borrow_sync)
        except Exception as exc:
            failed: dict[str, Any] = {"elapsed_ms": elapsed_ms(start)}
            failed.update(self._pool_stats())
            message = f"postgres: {error_text(exc, self.timeout, self.secrets)}"
            return CheckResult.failed(message, details=failed)
        latency = elapsed_ms(start)
        details.update(self._pool_stats())
        status = grade(latency, warn_above=self.warn, fail_above=self.fail)
        output = f"SELECT 1 in {latency:g} ms" + over(status, self.warn, self.fail)
        return CheckResult(status, output, latency, "ms", details)

    async def _connect(self) -> dict[str, Any]:
        import psycopg

        start = time.perf_counter()
        assert self.dsn is not None
        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        async with conn:
            connected = elapsed_ms(start)
            query_start = time.perf_counter()
            async with conn.cursor() as cursor:
                await cursor.execute("SELECT 1")
                await cursor.fetchone()
            return _server_details(conn, connect_ms=connected, query_ms=elapsed_ms(query_start))

    async def _borrow_async(self) -> dict[str, Any]:
        start = time.perf_counter()
        async with self.pool.connection(timeout=self.timeout) as conn:
            acquired = elapsed_ms(start)
            query_start = time.perf_counter()
            async with conn.cursor() as cursor:
                await cursor.execute("SELECT 1")
                await cursor.fetchone()
            return _server_details(conn, acquire_ms=acquired, query_ms=elapsed_ms(query_start))

    def _borrow_sync(self) -> dict[str, Any]:
        start = time.perf_counter()
        with self.pool.connection(timeout=self.timeout) as conn:
            acquired = elapsed_ms(start)
            query_start = time.perf_counter()
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
            return _server_details(conn, acquire_ms=acquired, query_ms=elapsed_ms(query_start))

    def _pool_stats(self) -> dict[str, Any]:
        if self.pool is None:
            return {}
        try:
            return {"pool": dict(self.pool.get_stats())}
        except Exception:  # statistics are extras: never let them hide the verdict
            return {}


def _server_details(conn: Any, **timings: float) -> dict[str, Any]:
    info = conn.info
    return {
        "server_version": info.parameter_status("server_version") or str(info.server_version),
        "database": info.dbname,
        **timings,
    }


def redis_check(
    name: str = "redis",
    *,
    url: str | None = None,
    client: Redis | None = None,
    warn_above: float | None = None,
    fail_above: float | None = None,
    memory_warn_above: float | None = 90.0,
    memory_fail_above: float | None = None,
    **options: Unpack[CheckOptions],
) -> Check:
    """Redis answers PING: latency in ms (connection included when it connects).

    Give ``url`` (``redis://``, ``rediss://`` or ``unix://``; a new client each run, no retries)
    or ``client`` (a ``redis.asyncio.Redis``, left open). ``warn_above``/``fail_above``: latency
    thresholds in ms (default none). ``memory_warn_above``/``memory_fail_above``: used_memory as a
    percent of ``maxmemory``, applied when maxmemory is set (default warn 90, fail none). Details:
    version, connected_clients, memory in MiB and percent, eviction policy. Defaults:
    component_type "datastore", measurement "responseTime".
    """
    base = common(name, options, component_type="datastore", measurement="responseTime")
    warn, fail = thresholds(warn_above, fail_above)
    mem_warn, mem_fail = thresholds(
        memory_warn_above,
        memory_fail_above,
        warn_field="memory_warn_above",
        fail_field="memory_fail_above",
        maximum=100,
    )
    if (url is None) == (client is None):
        raise ConfigError("url", redact(str(url)), "give exactly one of url= or client=")
    if url is not None and (not isinstance(url, str) or not url.startswith(_REDIS_SCHEMES)):
        shown = redact(url) if isinstance(url, str) else type(url).__name__
        raise ConfigError(
            "url", shown, f"must be a URL starting with {' or '.join(_REDIS_SCHEMES)}"
        )
    if client is not None and not callable(getattr(client, "ping", None)):
        raise ConfigError("client", type(client).__name__, "must be a redis.asyncio.Redis")
    require("redis", "redis", "redis")
    probe = _Redis(url, client, base.timeout, warn, fail, mem_warn, mem_fail, passwords_in(url))
    return base.check(probe.run)


@dataclass(frozen=True, slots=True)
class _Redis:
    url: str | None
    client: Any
    timeout: float
    warn: float | None
    fail: float | None
    memory_warn: float | None
    memory_fail: float | None
    secrets: tuple[str, ...]

    async def run(self) -> CheckResult:
        """PING, read INFO, and grade the latency and the memory."""
        start = time.perf_counter()
        client = self.client
        try:
            async with asyncio.timeout(self.timeout):
                if client is None:
                    client = self._connect()
                await client.ping()
                latency = elapsed_ms(start)
                info = await client.info()
        except Exception as exc:
            message = f"redis: {error_text(exc, self.timeout, self.secrets)}"
            return CheckResult.failed(message, details={"elapsed_ms": elapsed_ms(start)})
        finally:
            if self.client is None and client is not None:
                await client.aclose()
        return self._grade(latency, info)

    def _connect(self) -> Redis:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        assert self.url is not None
        # One attempt: retrying inside a health check only hides the outage and adds delay.
        return Redis.from_url(
            self.url,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def _grade(self, latency: float, info: Mapping[str, Any]) -> CheckResult:
        used = int(info.get("used_memory", 0))
        maxmemory = int(info.get("maxmemory", 0))
        details: dict[str, Any] = {
            "redis_version": info.get("redis_version"),
            "connected_clients": info.get("connected_clients"),
            "used_memory_mib": mib(used),
            "maxmemory_mib": mib(maxmemory) if maxmemory > 0 else None,
            "maxmemory_policy": info.get("maxmemory_policy"),
        }
        latency_status = grade(latency, warn_above=self.warn, fail_above=self.fail)
        parts = [f"PING in {latency:g} ms" + over(latency_status, self.warn, self.fail)]
        memory_status = Status.PASS
        if maxmemory > 0:
            percent = round(used / maxmemory * 100.0, 3)
            details["memory_percent"] = percent
            memory_status = grade(percent, warn_above=self.memory_warn, fail_above=self.memory_fail)
            parts.append(f"memory {percent:g}% of maxmemory")
        else:
            parts.append(f"memory {mib(used):g} MiB (no maxmemory)")
        status = worst(latency_status, memory_status)
        return CheckResult(status, "; ".join(parts), latency, "ms", details)
