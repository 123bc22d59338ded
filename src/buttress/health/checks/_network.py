"""HTTP and TCP checks: is the other side there, and how fast does it answer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Unpack

from buttress import _options as opt
from buttress._redact import redact
from buttress.errors import ConfigError
from buttress.health._model import Check, CheckResult, Status, grade
from buttress.health.checks._common import (
    CheckOptions,
    common,
    elapsed_ms,
    error_text,
    over,
    passwords_in,
    require,
    scrub,
    sensitive_values,
    thresholds,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["http_check", "tcp_check"]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _statuses(value: object) -> frozenset[int]:
    items = [value] if isinstance(value, int) else value
    if (
        isinstance(items, str | bytes)
        or not isinstance(items, Collection)
        or not items
        or not all(
            isinstance(i, int) and not isinstance(i, bool) and 100 <= i <= 599 for i in items
        )
    ):
        raise ConfigError(
            "expected_status", value, "must be an HTTP status (100-599) or a list of them"
        )
    return frozenset(items)


def http_check(
    name: str,
    url: str,
    *,
    expected_status: int | Collection[int] = 200,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    follow_redirects: bool = False,
    verify: bool = True,
    client: httpx.AsyncClient | None = None,
    warn_above: float | None = None,
    fail_above: float | None = None,
    **options: Unpack[CheckOptions],
) -> Check:
    """An HTTP endpoint answers with an expected status: latency in ms (httpx, async).

    ``expected_status``: one status or several (default 200); anything else, a connection error
    or the timeout fails. The body is not read. ``client``: an ``httpx.AsyncClient`` to reuse
    (left open; ``verify`` then comes from it); otherwise one is made per run.
    ``warn_above``/``fail_above``: latency thresholds in ms (default none). Details: status code,
    method, URL (secrets masked), HTTP version. Defaults: component_type "component",
    measurement "responseTime".
    """
    base = common(name, options, component_type="component", measurement="responseTime")
    warn, fail = thresholds(warn_above, fail_above)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        shown = redact(url) if isinstance(url, str) else type(url).__name__
        raise ConfigError("url", shown, "must be a URL starting with http:// or https://")
    statuses = _statuses(expected_status)
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise ConfigError("method", method, f"must be one of {sorted(_METHODS)}")
    if headers is not None and not (
        isinstance(headers, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        raise ConfigError("headers", type(headers).__name__, "must be a table of strings")
    for field, flag in (("follow_redirects", follow_redirects), ("verify", verify)):
        if not isinstance(flag, bool):
            raise ConfigError(field, flag, "must be true or false")
    if client is not None and not callable(getattr(client, "stream", None)):
        raise ConfigError("client", type(client).__name__, "must be an httpx.AsyncClient")
    require("httpx", "http", "health")
    probe = _Http(
        url=url,
        method=method.upper(),
        statuses=statuses,
        headers=dict(headers or {}),
        follow_redirects=follow_redirects,
        verify=verify,
        client=client,
        timeout=base.timeout,
        warn=warn,
        fail=fail,
        secrets=(*passwords_in(url), *sensitive_values(headers or {})),
    )
    return base.check(probe.run)


@dataclass(frozen=True, slots=True)
class _Http:
    url: str
    method: str
    statuses: frozenset[int]
    headers: dict[str, str]
    follow_redirects: bool
    verify: bool
    client: Any
    timeout: float
    warn: float | None
    fail: float | None
    secrets: tuple[str, ...]

    async def run(self) -> CheckResult:
        """Send the request, read the status line and headers, and grade the latency."""
        start = time.perf_counter()
        shown_url = scrub(self.url, self.secrets)
        try:
            async with asyncio.timeout(self.timeout):
                if self.client is not None:
                    code, version = await self._request(self.client)
                else:
                    import httpx

                    async with httpx.AsyncClient(
                        timeout=self.timeout, verify=self.verify
                    ) as client:
                        code, version = await self._request(client)
        except Exception as exc:
            message = f"{self.method} {shown_url}: {error_text(exc, self.timeout, self.secrets)}"
            details = {"method": self.method, "url": shown_url, "elapsed_ms": elapsed_ms(start)}
            return CheckResult.failed(message, details=details)
        latency = elapsed_ms(start)
        details = {
            "status_code": code,
            "method": self.method,
            "url": shown_url,
            "http_version": version,
        }
        if code not in self.statuses:
            expected = " or ".join(str(s) for s in sorted(self.statuses))
            message = f"{self.method} {shown_url} returned {code}, expected {expected}"
            return CheckResult(Status.FAIL, message, latency, "ms", details)
        status = grade(latency, warn_above=self.warn, fail_above=self.fail)
        text = f"{self.method} {shown_url} returned {code} in {latency:g} ms"
        return CheckResult(
            status, text + over(status, self.warn, self.fail), latency, "ms", details
        )

    async def _request(self, client: Any) -> tuple[int, str]:
        async with client.stream(
            self.method, self.url, headers=self.headers, follow_redirects=self.follow_redirects
        ) as response:
            return int(response.status_code), str(response.http_version)


def tcp_check(
    name: str,
    host: str,
    port: int,
    *,
    warn_above: float | None = None,
    fail_above: float | None = None,
    **options: Unpack[CheckOptions],
) -> Check:
    """A TCP port accepts connections: connect latency in ms; refused or timed out fails.

    ``warn_above``/``fail_above``: latency thresholds in ms (default none). Details: host, port,
    the peer address. Defaults: component_type "component", measurement "responseTime".
    """
    base = common(name, options, component_type="component", measurement="responseTime")
    warn, fail = thresholds(warn_above, fail_above)
    if not isinstance(host, str) or not host.strip():
        raise ConfigError("host", host, "must be a host name or address")
    if opt.integer("port", port, minimum=1) > 65535:
        raise ConfigError("port", port, "must be an integer between 1 and 65535")
    probe = _Tcp(host, port, base.timeout, warn, fail)
    return base.check(probe.run)


@dataclass(frozen=True, slots=True)
class _Tcp:
    host: str
    port: int
    timeout: float
    warn: float | None
    fail: float | None

    async def run(self) -> CheckResult:
        """Open a connection, time it, and close it at once."""
        where = f"{self.host}:{self.port}"
        details: dict[str, Any] = {"host": self.host, "port": self.port}
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                _, writer = await asyncio.open_connection(self.host, self.port)
        except Exception as exc:
            details["elapsed_ms"] = elapsed_ms(start)
            return CheckResult.failed(f"{where}: {error_text(exc, self.timeout)}", details=details)
        latency = elapsed_ms(start)
        peer = writer.get_extra_info("peername")
        details["peer"] = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else None
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        status = grade(latency, warn_above=self.warn, fail_above=self.fail)
        text = f"connected to {where} in {latency:g} ms"
        return CheckResult(
            status, text + over(status, self.warn, self.fail), latency, "ms", details
        )
