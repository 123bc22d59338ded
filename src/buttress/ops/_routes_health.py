"""Health endpoints: public, fast, ``application/health+json``; pass/warn 200, fail 503.

Probes never wait on a check: they call ``HealthRegistry.run(group, wait=False)``, which serves
cached results (stale ones while a background refresh runs) and starts checks that never ran in
the background. The rendered body is reused while the results are the same objects.

A readiness or startup probe that finds a *critical* check with no result yet answers 503
(``fail``, "not run yet"): a service is not ready until its checks have said so.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from buttress import _redact
from buttress.breaker import BreakerState
from buttress.health import CONTENT_TYPE, HealthRegistry, HealthReport
from buttress.health._report import rfc3339
from buttress.ops._context import OpsContext, never_ran
from buttress.ops._http import JSONBody

__all__ = ["breaker_health", "health_routes"]

_NO_STORE = {"Cache-Control": "no-store"}
# An open breaker fails as a component; the service protecting itself only warns overall.
_BREAKER_STATUS = {
    BreakerState.CLOSED: "pass",
    BreakerState.DISABLED: "pass",
    BreakerState.HALF_OPEN: "warn",
    BreakerState.OPEN: "fail",
    BreakerState.FORCED_OPEN: "fail",
}


def health_body(doc: dict[str, Any], status_code: int) -> Response:
    """An ``application/health+json`` response that is never cached."""
    return JSONBody(doc, status_code, headers=_NO_STORE, media_type=CONTENT_TYPE)


def _counts(report: HealthReport) -> dict[str, int]:
    counts = {"pass": 0, "warn": 0, "fail": 0}
    for outcome in report.checks.values():
        counts[outcome.result.status.ietf] += 1
    return counts


def breaker_health(ctx: OpsContext) -> dict[str, Any]:
    """Every breaker as an IETF check ``<name>:state``; overall ``warn`` if any is not closed."""
    checks: dict[str, list[dict[str, Any]]] = {}
    worst = "pass"
    for breaker in ctx.registry.breakers():
        snap = breaker.snapshot()
        status = _BREAKER_STATUS[snap.state]
        if status != "pass":
            worst = "warn"
        item: dict[str, Any] = {
            "componentId": breaker.name,
            "componentType": "component",
            "observedValue": round(snap.failure_rate * 100, 3),
            "observedUnit": "percent",
            "status": status,
            "time": rfc3339(snap.since),
            "output": snap.state.value,
            "state": snap.state.value,
        }
        if snap.retry_after is not None:
            item["retryAfter"] = round(snap.retry_after, 3)
        checks[f"{breaker.name}:state"] = [item]
    return {"status": worst, "checks": checks}


class _Prebuilt(Response):
    """A stored health body: the headers are built once, not on every request."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status_code, self.body, self.background = status, body, None
        self.raw_headers = [
            (b"cache-control", b"no-store"),
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"content-type", CONTENT_TYPE.encode("latin-1")),
        ]


class _Rendered:
    """The last body of each health view, reused while the report holds the very same results.

    Rendering (IETF document, redaction, JSON) costs several times the probe's own work, and a
    probe mostly sees cached results: the key is the overall status, the number of registered
    secrets (a new one must be masked) and the result objects themselves, compared by identity.
    """

    __slots__ = ("_fresh", "_views")

    def __init__(self) -> None:
        self._views: dict[str, tuple[tuple[Any, ...], int, bytes]] = {}
        # view -> (registry generation, fresh until, secrets registered, status, body)
        self._fresh: dict[str, tuple[int, float, int, int, bytes]] = {}

    def fresh(self, view: str, health: HealthRegistry) -> Response | None:
        """The stored response of ``view`` without running the registry, while no result has
        changed and every cached result it was rendered from is still within its ttl."""
        found = self._fresh.get(view)
        if (
            found is None
            or found[0] != health.generation
            or health.clock.monotonic() >= found[1]
            or found[2] != len(_redact._secrets)
        ):
            return None
        return _Prebuilt(found[3], found[4])

    def keep_fresh(self, view: str, group: str | None, health: HealthRegistry) -> None:
        """Note how long the response just stored for ``view`` stays valid as it is."""
        generation, until = health.fresh_until(group)
        status, body = self._views[view][1:]
        self._fresh[view] = (generation, until, len(_redact._secrets), status, body)

    @staticmethod
    def key(report: HealthReport) -> tuple[Any, ...]:
        """What a view of ``report`` depends on."""
        results = tuple(outcome.result for outcome in report.checks.values())
        return (report.status, len(_redact._secrets), *results)

    def get(self, view: str, key: tuple[Any, ...]) -> Response | None:
        """The stored response of ``view`` if it was rendered from ``key``."""
        found = self._views.get(view)
        if found is None:
            return None
        old = found[0]
        if len(old) != len(key) or old[1] != key[1] or old[0] is not key[0]:
            return None
        for a, b in zip(old[2:], key[2:], strict=True):
            if a is not b:
                return None
        return _Prebuilt(found[1], found[2])

    def put(self, view: str, key: tuple[Any, ...], response: Response) -> Response:
        """Remember ``response`` for ``view``; returns it."""
        self._views[view] = (key, response.status_code, bytes(response.body))
        return response


def health_routes(ctx: OpsContext) -> list[Route]:
    """The routes under ``/health/``."""
    rendered = _Rendered()

    async def view(name: str, group: str | None, render: Any) -> Response:
        fresh = rendered.fresh(name, ctx.health)
        if fresh is not None:
            return fresh
        report = await ctx.health.run(group, wait=False)
        key = rendered.key(report)
        response = rendered.get(name, key)
        if response is None:
            ctx.history.record(report)
            response = rendered.put(name, key, render(report))
        rendered.keep_fresh(name, group, ctx.health)
        return response

    def summary_body(report: HealthReport) -> Response:
        doc = {"status": report.status.ietf, "counts": _counts(report)}
        return health_body(doc, report.http_status)

    def detailed_body(report: HealthReport) -> Response:
        return health_body(report.to_dict(verbose=True), report.http_status)

    def probe_body(report: HealthReport) -> Response:
        doc = report.to_dict(verbose=False)
        missing = never_ran(report) if report.group != "liveness" else []
        if missing:
            doc["status"] = "fail"
            doc["output"] = "not run yet: " + ", ".join(missing)
            return health_body(doc, 503)
        return health_body(doc, report.http_status)

    async def summary(request: Request) -> Response:
        """Overall status and how many checks pass, warn and fail."""
        return await view("summary", None, summary_body)

    async def probe(group: str) -> Response:
        return await view(group, group, probe_body)

    async def live(request: Request) -> Response:
        """Liveness: the process answers (system checks of the ``liveness`` group only)."""
        return await probe("liveness")

    async def ready(request: Request) -> Response:
        """Readiness: the ``readiness`` checks, from cache."""
        return await probe("readiness")

    async def startup(request: Request) -> Response:
        """Startup: the ``startup`` checks, from cache."""
        return await probe("startup")

    async def detailed(request: Request) -> Response:
        """Every check with its details, from cache."""
        return await view("detailed", None, detailed_body)

    async def circuit_breakers(request: Request) -> Response:
        """Every circuit breaker's state as a health check."""
        return health_body(breaker_health(ctx), 200)

    return [
        Route("/health/", summary, methods=["GET"], name="health"),
        Route("/health/live", live, methods=["GET"], name="health_live"),
        Route("/health/ready", ready, methods=["GET"], name="health_ready"),
        Route("/health/startup", startup, methods=["GET"], name="health_startup"),
        Route("/health/detailed", detailed, methods=["GET"], name="health_detailed"),
        Route(
            "/health/circuit-breakers",
            circuit_breakers,
            methods=["GET"],
            name="health_circuit_breakers",
        ),
    ]
