"""The admin JSON API under ``/admin/reliability/``: breakers, pipelines, health runs, the
reliability report, the audit log and recent events. Reads need a viewer token (unless reads are
public); every POST needs an operator token and is written to the audit log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from buttress.breaker import CircuitBreaker
from buttress.errors import StoreError
from buttress.ops._context import OpsContext
from buttress.ops._http import (
    Access,
    JSONBody,
    client_address,
    error,
    guard,
    read_reason,
    strict_query,
)
from buttress.ops._report import render_html, render_markdown
from buttress.ops._routes_health import health_body
from buttress.ops._tokens import Token

__all__ = ["BREAKER_ACTIONS", "admin_routes", "int_param", "record_audit"]

logger = logging.getLogger("buttress.ops")

PREFIX = "/admin/reliability"
BREAKER_ACTIONS: dict[str, Callable[[CircuitBreaker], None]] = {
    "reset": CircuitBreaker.reset,
    "open": CircuitBreaker.trip,
    "disable": CircuitBreaker.disable,
}
"""The breaker actions of the API and the method each one calls."""
MAX_PAGE = 500


def int_param(
    request: Request, name: str, default: int | None, maximum: int
) -> int | Response | None:
    """Query parameter ``name`` as an int in 1..``maximum``, ``default`` when absent, or a 400."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= maximum:
        return error(400, "bad_request", f"{name} must be an integer from 1 to {maximum}")
    return value


def _breaker_view(breaker: CircuitBreaker) -> dict[str, Any]:
    data = breaker.snapshot().to_dict()
    data["options"] = breaker.describe()["options"]
    return data


async def record_audit(
    ctx: OpsContext,
    request: Request,
    action: str,
    target: str,
    before: Any,
    after: Any,
    reason: str | None,
) -> int | Response:
    """Append a mutation by the request's token to the audit log: the entry id, or a 500."""
    token: Token = request.state.token
    try:
        entry = await run_in_threadpool(
            lambda: ctx.audit.append(
                actor=token.name,
                action=action,
                target=target,
                before=before,
                after=after,
                client=client_address(request),
                reason=reason,
            )
        )
    except StoreError as exc:
        logger.error("audit log write failed for %s on %s: %s", action, target, exc)
        return error(500, "audit_failed", f"{action} on {target} was applied but not audited")
    return entry.id


def admin_routes(ctx: OpsContext) -> list[Route]:
    """The routes of the admin API, each behind its guard."""

    async def audit(
        request: Request, action: str, target: str, before: Any, after: Any, reason: str | None
    ) -> int | Response:
        return await record_audit(ctx, request, action, target, before, after, reason)

    async def list_breakers(request: Request) -> Response:
        """Every circuit breaker with its snapshot and options."""
        return JSONBody({"circuit_breakers": [_breaker_view(b) for b in ctx.registry.breakers()]})

    def breaker_action(action: str) -> Callable[[Request], Any]:
        method = BREAKER_ACTIONS[action]

        async def act(request: Request) -> Response:
            name = request.path_params["name"]
            try:
                breaker = ctx.registry.get(name, "breaker")
            except KeyError:
                return error(404, "not_found", f"no circuit breaker named {name!r}")
            reason = await read_reason(request)
            if isinstance(reason, Response):
                return reason
            before = breaker.snapshot().to_dict()
            method(breaker)
            after = breaker.snapshot().to_dict()
            entry = await audit(request, f"circuit_breaker.{action}", name, before, after, reason)
            if isinstance(entry, Response):
                return entry
            body = {"name": name, "action": action, "before": before, "after": after}
            return JSONBody({**body, "audit_id": entry})

        act.__name__ = f"breaker_{action}"
        return act

    async def list_pipelines(request: Request) -> Response:
        """Every pipeline described, outermost policy first."""
        return JSONBody({"pipelines": [p.describe() for p in ctx.registry.pipelines()]})

    async def run_health(request: Request) -> Response:
        """Run every health check now and return the report."""
        reason = await read_reason(request)
        if isinstance(reason, Response):
            return reason
        report = await ctx.health_report(None, fresh=True, wait=True)
        after = {"status": report.status.ietf, "summary": report.summary()}
        entry = await audit(request, "health.run", "health", None, after, reason)
        if isinstance(entry, Response):
            return entry
        return health_body(report.to_dict(verbose=True), 200)

    async def reliability(request: Request) -> Response:
        """The reliability report as JSON, Markdown (``format=md``) or HTML (``format=html``)."""
        fmt = request.query_params.get("format", "json")
        if fmt not in ("json", "md", "html"):
            return error(400, "bad_request", "format must be json, md or html")
        report = await ctx.reliability_report()
        if fmt == "md":
            return Response(render_markdown(report), media_type="text/markdown; charset=utf-8")
        if fmt == "html":
            return HTMLResponse(render_html(report))
        return JSONBody(report)

    async def audit_log(request: Request) -> Response:
        """The newest audit entries; ``before`` (an entry id) pages back."""
        limit = int_param(request, "limit", 50, MAX_PAGE)
        before = int_param(request, "before", None, 2**62)
        if isinstance(limit, Response):
            return limit
        if isinstance(before, Response):
            return before
        assert limit is not None
        try:
            entries = await run_in_threadpool(ctx.audit.page, limit=limit + 1, before=before)
        except StoreError as exc:
            logger.error("audit log read failed: %s", exc)
            return error(500, "store_error", "the audit log cannot be read")
        more = len(entries) > limit
        entries = entries[:limit]
        next_before = entries[-1].id if more else None
        return JSONBody({"entries": [e.to_dict() for e in entries], "next_before": next_before})

    async def recent_events(request: Request) -> Response:
        """Recent events, newest first; ``after`` (a ``seq``) returns only newer ones."""
        limit = int_param(request, "limit", 100, MAX_PAGE)
        after = int_param(request, "after", None, 2**62)
        if isinstance(limit, Response):
            return limit
        if isinstance(after, Response):
            return after
        assert limit is not None
        return JSONBody({"events": ctx.events.recent(limit, after=after or 0)})

    read, operate = Access.READ, Access.OPERATE

    def route(
        path: str, access: Access, endpoint: Any, method: str, query: tuple[str, ...] = ()
    ) -> Route:
        checked = guard(ctx, access, strict_query(endpoint, query))
        return Route(f"{PREFIX}{path}", checked, methods=[method], name=endpoint.__name__)

    return [
        route("/circuit-breakers", read, list_breakers, "GET"),
        *(
            route(f"/circuit-breakers/{{name}}/{action}", operate, breaker_action(action), "POST")
            for action in BREAKER_ACTIONS
        ),
        route("/pipelines", read, list_pipelines, "GET"),
        route("/health/run", operate, run_health, "POST"),
        route("/reports/reliability", read, reliability, "GET", ("format",)),
        route("/audit", read, audit_log, "GET", ("limit", "before")),
        route("/events", read, recent_events, "GET", ("limit", "after")),
    ]
