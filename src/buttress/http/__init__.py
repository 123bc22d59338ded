"""Resilient HTTP clients: an httpx transport applying a pipeline per host.

``Client`` and ``AsyncClient`` are ``httpx`` clients; ``wrap`` makes an existing one resilient.
Per host (``HostPolicy``, defaults plus overrides by host pattern): attempt and total timeouts,
retries of idempotent requests honouring ``Retry-After``, a circuit breaker, an outgoing rate
limit such as ``"60/minute"``, and hedging of GETs (async). Statistics per host (requests,
outcomes, success rate, latency percentiles, breaker state) come from ``snapshot()``, graded
into a health status by ``HealthThresholds``; ``health_check`` turns them into a health check.
Needs httpx (the ``http`` extra).

>>> import httpx
>>> from buttress.http import Client
>>> answer = lambda request: httpx.Response(200, text="hello")
>>> with Client(transport=httpx.MockTransport(answer)) as client:
...     client.get("https://api.example.com/").text
...     [(s.host, s.requests, s.success_rate) for s in client.snapshot()]
'hello'
[('api.example.com', 1, 1.0)]
"""

from buttress.http._client import AsyncClient, Client, resilience_of, wrap
from buttress.http._health import health_check
from buttress.http._policy import IDEMPOTENT_METHODS, RETRY_STATUSES, HostPolicy
from buttress.http._resilience import OTHER, ClientResilience
from buttress.http._stats import OUTCOMES, HealthThresholds, HostStats
from buttress.http._transport import AsyncResilientTransport, ResilientTransport

__all__ = [
    "IDEMPOTENT_METHODS",
    "OTHER",
    "OUTCOMES",
    "RETRY_STATUSES",
    "AsyncClient",
    "AsyncResilientTransport",
    "Client",
    "ClientResilience",
    "HealthThresholds",
    "HostPolicy",
    "HostStats",
    "ResilientTransport",
    "health_check",
    "resilience_of",
    "wrap",
]
