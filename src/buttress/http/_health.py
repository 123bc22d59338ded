"""``health_check``: a health check graded from the per-host statistics of HTTP clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Unpack

import httpx

from buttress.errors import ConfigError
from buttress.health import Check, CheckResult, Status
from buttress.health.checks import CheckOptions
from buttress.health.checks._common import common, scrub
from buttress.http._client import resilience_of
from buttress.http._resilience import ClientResilience
from buttress.registry import Registry

__all__ = ["health_check"]

_STATUS = {"pass": Status.PASS, "warn": Status.WARN, "fail": Status.FAIL}


def health_check(
    source: Registry | ClientResilience | httpx.Client | httpx.AsyncClient,
    name: str = "http_clients",
    **options: Unpack[CheckOptions],
) -> Check:
    """A check of the hosts of HTTP clients: every client registered in a ``Registry``
    (kind ``http_client``), or one client (a ``ClientResilience``, or a client from
    ``Client``, ``AsyncClient`` or ``wrap``).

    Each host is graded by its client's ``HealthThresholds`` (success rate over the recent
    window, p99 latency, breaker state); the check takes the worst grade. Observed value: the
    lowest recent success rate, in percent. Details: per ``client/host`` its status, reason,
    requests, success rate, p50/p99 latency (ms) and breaker state. Defaults: not critical (an
    upstream that is down makes readiness warn, not fail; pass ``critical=True`` when the
    service is useless without it), component_type "component", measurement "successRate".
    """
    merged: CheckOptions = {"critical": False, **options}
    base = common(name, merged, component_type="component", measurement="successRate")
    clients = _clients_of(source)

    async def http_hosts() -> CheckResult:
        """Grade every host of every client."""
        worst = Status.PASS
        lowest: float | None = None
        hosts: dict[str, dict[str, Any]] = {}
        problems: list[str] = []
        for client in clients():
            for stats in client.snapshot():
                key = f"{stats.client}/{stats.host}"
                status = _STATUS[stats.status]
                if status.severity > worst.severity:
                    worst = status
                if stats.success_rate is not None:
                    rate = stats.success_rate * 100
                    lowest = rate if lowest is None else min(lowest, rate)
                hosts[key] = {
                    "status": stats.status,
                    "reason": stats.reason,
                    "requests": stats.requests,
                    "success_rate": stats.success_rate,
                    "latency_p50_ms": _ms(stats.latency_p50),
                    "latency_p99_ms": _ms(stats.latency_p99),
                    "breaker": stats.breaker_state,
                }
                if stats.status != "pass":
                    problems.append(f"{key} {stats.status}: {stats.reason}")
        observed = None if lowest is None else round(lowest, 2)
        details = {"hosts": hosts}
        if problems:
            output = scrub("; ".join(problems))
        elif hosts:
            output = f"{len(hosts)} hosts healthy"
        else:
            output = "no requests yet"
        return CheckResult(worst, output, observed, "percent", details)

    return base.check(http_hosts)


def _clients_of(source: object) -> Callable[[], list[ClientResilience]]:
    """A function listing the clients to grade, checked now."""
    if isinstance(source, ClientResilience):
        return lambda: [source]
    if isinstance(source, httpx.Client | httpx.AsyncClient):
        resilience = resilience_of(source)
        return lambda: [resilience]
    if isinstance(source, Registry):
        return source.http_clients
    raise ConfigError(
        "source", type(source).__name__, "must be a Registry, a ClientResilience or a client"
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
