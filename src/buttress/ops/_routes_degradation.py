"""The degradation level over HTTP: ``GET /health/degradation`` (public), and under the admin
API ``GET /admin/reliability/degradation`` (read), ``POST .../degradation/set-level`` and
``POST .../degradation/clear`` (operator, audited).

The manager is the ``DegradationManager`` registered in the app's ``Registry`` (kind
``degradation``) when the app is created; without one there are no such routes. While the
app's scheduler runs, a ``degradation`` job ticks the manager every ``manager.interval``
seconds.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from buttress.degrade import DegradationLevel, DegradationManager
from buttress.errors import ConfigError
from buttress.health import CONTENT_TYPE
from buttress.ops._context import OpsContext
from buttress.ops._http import Access, JSONBody, error, guard, read_reason, strict_query
from buttress.ops._routes_admin import record_audit
from buttress.ops._tokens import Token

__all__ = ["JOB", "degradation_paths", "degradation_routes", "manager_of"]

PREFIX = "/admin/reliability/degradation"
JOB = "degradation"
MAX_EXPIRY = 366 * 86400.0
_NO_STORE = {"Cache-Control": "no-store"}


def manager_of(ctx: OpsContext) -> DegradationManager | None:
    """The degradation manager registered in the app's registry, or None."""
    found = ctx.registry.of_kind("degradation")
    return found[0] if found else None


def _missing() -> Response:
    return error(404, "not_found", "no degradation manager is registered")


def _brief(manager: DegradationManager) -> dict[str, Any]:
    status = manager.status()
    keys = ("level", "value", "since", "computed", "override")
    return {key: status[key] for key in keys}


def _expiry(raw: str | None) -> float | Response | None:
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= MAX_EXPIRY:  # also refuses NaN
        return error(400, "bad_request", f"expires_in must be seconds in (0, {MAX_EXPIRY:g}]")
    return seconds


def degradation_routes(ctx: OpsContext) -> list[Route]:
    """The routes, each behind its guard, and the ``degradation`` job; none without a
    manager."""
    if manager_of(ctx) is None:
        return []

    def schedule() -> None:
        manager = manager_of(ctx)
        if manager is None or ctx.scheduler is None:
            return
        if JOB not in {job.name for job in ctx.scheduler.jobs()}:
            ctx.scheduler.add(JOB, manager.tick, interval=manager.interval)

    ctx.on_startup.append(schedule)

    async def health(request: Request) -> Response:
        """The level as an ``application/health+json`` document: pass at normal, else warn;
        always 200 (a degraded service still serves: readiness says whether it should)."""
        manager = manager_of(ctx)
        if manager is None:
            return _missing()
        status = manager.status()
        level = status["level"]
        held = [rule["reason"] for rule in status["rules"] if rule["holds"]]
        override = status["override"]
        output = f"manual: {override['reason']}" if override else "; ".join(held)
        doc = {
            "status": "pass" if level == "normal" else "warn",
            "level": level,
            "value": status["value"],
            "since": status["since"],
            "output": output,
            "override": override is not None,
            "features": {f["name"]: f["enabled"] for f in status["features"]},
        }
        return JSONBody(doc, 200, headers=_NO_STORE, media_type=CONTENT_TYPE)

    async def show(request: Request) -> Response:
        """The level, why, the override, the rules, the features and the history."""
        manager = manager_of(ctx)
        if manager is None:
            return _missing()
        return JSONBody(manager.status())

    async def set_level(request: Request) -> Response:
        """Set the level by hand: ``level``, ``reason`` (query or body), ``expires_in``."""
        manager = manager_of(ctx)
        if manager is None:
            return _missing()
        query = request.query_params
        body_reason = await read_reason(request)
        if isinstance(body_reason, Response):
            return body_reason
        reason = query.get("reason") or body_reason
        if not reason or not reason.strip() or len(reason) > 500:
            return error(400, "bad_request", "reason is required (at most 500 characters)")
        try:
            level = DegradationLevel.from_name(query.get("level", ""))
        except ConfigError:
            names = ", ".join(member.label for member in DegradationLevel)
            return error(400, "bad_request", f"level must be one of {names}")
        expires_in = _expiry(query.get("expires_in"))
        if isinstance(expires_in, Response):
            return expires_in
        token: Token = request.state.token
        before = _brief(manager)
        override = await run_in_threadpool(
            lambda: manager.set_level(level, reason=reason, actor=token.name, expires_in=expires_in)
        )
        after = _brief(manager)
        entry = await record_audit(
            ctx, request, "degradation.set_level", manager.name, before, after, reason
        )
        if isinstance(entry, Response):
            return entry
        body = {"before": before, "after": after, "override": override.to_dict()}
        return JSONBody({**body, "audit_id": entry})

    async def clear(request: Request) -> Response:
        """End the manual override; the computed level applies again."""
        manager = manager_of(ctx)
        if manager is None:
            return _missing()
        body_reason = await read_reason(request)
        if isinstance(body_reason, Response):
            return body_reason
        reason = (request.query_params.get("reason") or body_reason or "").strip() or None
        if reason is not None and len(reason) > 500:
            return error(400, "bad_request", "reason must be at most 500 characters")
        token: Token = request.state.token
        before = _brief(manager)
        old = await run_in_threadpool(lambda: manager.clear(actor=token.name, reason=reason))
        after = _brief(manager)
        entry = await record_audit(
            ctx, request, "degradation.clear", manager.name, before, after, reason
        )
        if isinstance(entry, Response):
            return entry
        body = {"cleared": old is not None, "before": before, "after": after}
        return JSONBody({**body, "audit_id": entry})

    def route(
        path: str, access: Access, endpoint: Any, method: str, query: tuple[str, ...] = ()
    ) -> Route:
        checked = guard(ctx, access, strict_query(endpoint, query))
        return Route(path, checked, methods=[method], name=f"degradation_{endpoint.__name__}")

    return [
        route("/health/degradation", Access.PUBLIC, health, "GET"),
        route(PREFIX, Access.READ, show, "GET"),
        route(
            f"{PREFIX}/set-level",
            Access.OPERATE,
            set_level,
            "POST",
            ("level", "reason", "expires_in"),
        ),
        route(f"{PREFIX}/clear", Access.OPERATE, clear, "POST", ("reason",)),
    ]


# -- OpenAPI ------------------------------------------------------------------------------------

_STR = {"type": "string"}
_REASON = {"type": "string", "minLength": 1, "maxLength": 500, "pattern": r"\S"}
_LEVEL = {"type": "string", "enum": [member.label for member in DegradationLevel]}
_NULLABLE_OBJECT = {"type": ["object", "null"]}
_BRIEF = {
    "type": "object",
    "properties": {
        "level": _LEVEL,
        "value": {"type": "integer"},
        "since": _STR,
        "computed": _LEVEL,
        "override": _NULLABLE_OBJECT,
    },
    "required": ["level", "value", "since", "computed", "override"],
}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def degradation_paths(admin: str, read: Any, mutation: Any) -> dict[str, Any]:
    """The OpenAPI paths of these routes (``read``/``mutation`` build the admin operations)."""
    not_found = _json({"$ref": "#/components/schemas/Error"}, "no degradation manager")
    status = {
        "type": "object",
        "properties": {
            "name": _STR,
            "level": _LEVEL,
            "value": {"type": "integer", "minimum": 0, "maximum": 5},
            "override": _NULLABLE_OBJECT,
            "rules": {"type": "array", "items": {"type": "object"}},
            "features": {"type": "array", "items": {"type": "object"}},
            "history": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["name", "level", "value", "override", "rules", "features", "history"],
    }
    health_doc = {
        "type": "object",
        "properties": {"status": {"type": "string", "enum": ["pass", "warn"]}, "level": _LEVEL},
        "required": ["status", "level"],
    }
    show = read("Degradation level, rules, features and history", _json(status))
    show["get"]["responses"]["404"] = not_found
    query = [
        {"name": "level", "in": "query", "required": True, "schema": _LEVEL},
        {"name": "reason", "in": "query", "required": True, "schema": _REASON},
        {
            "name": "expires_in",
            "in": "query",
            "required": False,
            "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_EXPIRY},
        },
    ]
    changed = {
        "type": "object",
        "properties": {"before": _BRIEF, "after": _BRIEF, "audit_id": {"type": "integer"}},
        "required": ["before", "after", "audit_id"],
    }
    set_level = mutation("Set the degradation level by hand", _json(changed), breaker=False)
    set_level["post"]["parameters"] = query
    set_level["post"]["responses"]["404"] = not_found
    clear = mutation("Clear the manual degradation level", _json(changed), breaker=False)
    optional_reason = {"type": "string", "maxLength": 500}
    clear["post"]["parameters"] = [{**query[1], "required": False, "schema": optional_reason}]
    clear["post"]["responses"]["404"] = not_found
    health = {
        "get": {
            "summary": "Degradation level (pass at normal, else warn)",
            "tags": ["health"],
            "security": [],
            "responses": {
                "200": {
                    "description": "the level",
                    "content": {CONTENT_TYPE: {"schema": health_doc}},
                },
                "404": not_found,
            },
        }
    }
    return {
        "/health/degradation": health,
        admin + "/degradation": show,
        admin + "/degradation/set-level": set_level,
        admin + "/degradation/clear": clear,
    }
