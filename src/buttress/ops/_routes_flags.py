"""Feature flags in the admin API, under ``/admin/reliability/flags``.

Reads (viewer): ``GET /flags`` (every flag with its status), ``GET /flags/{name}`` and
``GET /flags/{name}/history`` (the flag store's audit trail). Changes (operator, each written
to the ops audit log and to the flag store's own history, the token's name as the actor):
``POST /flags`` (a new flag: its fields and an optional ``reason``; 201, 409 if the name is
taken), ``PATCH /flags/{name}`` (some fields, e.g. ``{"rollout": 30, "reason": "..."}``),
``DELETE /flags/{name}`` and ``POST /flags/{name}/enable|disable|kill|revive`` (body
``{"reason": ...}`` optional). A bad field answers 400 naming it, an unknown flag 404, an
unreachable store 503.

The routes serve the ``FlagStore`` attached to the app's registry as ``flags`` before
``create_app`` (``FlagSettings.open`` and ``buttress serve`` do this; in code:
``registry.attach("flags", store, "default")``): the one named ``default``, else the first.
Without one the app has no flag routes (and its OpenAPI document none).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from buttress.errors import ConfigError, StoreError
from buttress.ops._context import OpsContext
from buttress.ops._http import Access, JSONBody, error, guard, read_reason, strict_query
from buttress.ops._routes_admin import MAX_PAGE, PREFIX, int_param, record_audit

if TYPE_CHECKING:
    from buttress.degrade.flags import FlagChange, FlagStore

__all__ = ["FLAG_ACTIONS", "flag_routes", "flag_store"]

FLAG_ACTIONS = ("enable", "disable", "kill", "revive")
"""The one-word changes, each a ``POST /flags/{name}/<action>``."""
_NO_STORE = "no flag store is attached to this app (see docs/flags.md)"


def flag_store(ctx: OpsContext) -> FlagStore | None:
    """The flag store the routes serve: the registry's ``flags`` named ``default``, else the
    first one, else None."""
    stores = ctx.registry.of_kind("flags")
    for store in stores:
        if getattr(store, "namespace", None) == "default":
            return store  # type: ignore[no-any-return]
    return stores[0] if stores else None


async def _json_object(request: Request) -> dict[str, Any] | Response:
    """The body as a JSON object (an empty body is ``{}``), or a 400."""
    body = await request.body()
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return error(400, "bad_request", "the body must be JSON")
    if not isinstance(data, dict):
        return error(400, "bad_request", "the body must be a JSON object")
    return data


def _reason_of(data: dict[str, Any]) -> str | Response | None:
    reason = data.pop("reason", None)
    if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
        return error(400, "bad_request", "reason must be a string of at most 500 characters")
    return reason


def flag_routes(ctx: OpsContext) -> list[Route]:
    """The routes under ``/admin/reliability/flags``, each behind its guard; none when the
    registry has no flag store (attach it before ``create_app``)."""
    if flag_store(ctx) is None:
        return []

    async def apply(
        request: Request, action: str, name: str, change: Callable[[FlagStore, str], FlagChange]
    ) -> Response:
        """Run a change in a worker thread, audit it, answer before/after and the ids."""
        store = flag_store(ctx)
        if store is None:
            return error(503, "flags_unavailable", _NO_STORE)
        token = request.state.token
        try:
            done = await run_in_threadpool(change, store, token.name)
        except KeyError:
            return error(404, "not_found", f"no flag named {name!r}")
        except ConfigError as exc:
            if exc.field == "name" and action == "create":
                return error(409, "conflict", f"a flag named {name!r} exists")
            return error(400, "bad_request", str(exc))
        except StoreError as exc:
            return error(503, "store_unavailable", f"the flag store failed: {exc}")
        audit = await record_audit(
            ctx, request, f"flag.{action}", name, done.before, done.after, done.reason
        )
        if isinstance(audit, Response):
            return audit
        body = {
            "name": name,
            "action": action,
            "before": done.before,
            "after": done.after,
            "status": store.status(name) if name in store else None,
            "change_id": done.id or None,
            "audit_id": audit,
        }
        return JSONBody(body, 201 if action == "create" else 200)

    async def list_flags(request: Request) -> Response:
        """Every flag with its status (on, partial, off, suspended, killed)."""
        store = flag_store(ctx)
        if store is None:
            return error(503, "flags_unavailable", _NO_STORE)
        return JSONBody(store.describe())

    async def get_flag(request: Request) -> Response:
        """One flag with its status."""
        store, name = flag_store(ctx), request.path_params["name"]
        if store is None:
            return error(503, "flags_unavailable", _NO_STORE)
        try:
            return JSONBody(store.view(name))
        except KeyError:
            return error(404, "not_found", f"no flag named {name!r}")

    async def flag_history(request: Request) -> Response:
        """A flag's audited changes, newest first; ``before`` (a change id) pages back."""
        store, name = flag_store(ctx), request.path_params["name"]
        if store is None:
            return error(503, "flags_unavailable", _NO_STORE)
        limit = int_param(request, "limit", 50, MAX_PAGE)
        before = int_param(request, "before", None, 2**62)
        if isinstance(limit, Response):
            return limit
        if isinstance(before, Response):
            return before
        assert limit is not None
        try:
            changes = await run_in_threadpool(
                store.history, limit=limit + 1, before=before, flag=name
            )
        except StoreError as exc:
            return error(503, "store_unavailable", f"the flag store failed: {exc}")
        more = len(changes) > limit
        changes = changes[:limit]
        return JSONBody(
            {
                "changes": [c.to_dict() for c in changes],
                "next_before": changes[-1].id if more else None,
            }
        )

    async def create_flag(request: Request) -> Response:
        """Create a flag from its fields (``name`` required) and an optional ``reason``."""
        from buttress.degrade.flags import Flag

        if flag_store(ctx) is None:
            return error(503, "flags_unavailable", _NO_STORE)
        data = await _json_object(request)
        if isinstance(data, Response):
            return data
        reason = _reason_of(data)
        if isinstance(reason, Response):
            return reason
        try:
            flag = Flag.from_dict(data)
        except ConfigError as exc:
            return error(400, "bad_request", str(exc))
        return await apply(
            request,
            "create",
            flag.name,
            lambda store, actor: store.create(flag, actor=actor, reason=reason),
        )

    async def change_flag(request: Request) -> Response:
        """Change some fields of a flag (``enabled``, ``rollout``, ``rules``...)."""
        from buttress.degrade.flags._model import parse_changes

        name = request.path_params["name"]
        if flag_store(ctx) is None:
            return error(503, "flags_unavailable", _NO_STORE)
        data = await _json_object(request)
        if isinstance(data, Response):
            return data
        reason = _reason_of(data)
        if isinstance(reason, Response):
            return reason
        try:
            changes = parse_changes(data)
        except ConfigError as exc:
            return error(400, "bad_request", str(exc))
        return await apply(
            request,
            "update",
            name,
            lambda store, actor: store.update(name, actor=actor, reason=reason, **changes),
        )

    async def delete_flag(request: Request) -> Response:
        """Delete a flag."""
        name = request.path_params["name"]
        if flag_store(ctx) is None:
            return error(503, "flags_unavailable", _NO_STORE)
        reason = await read_reason(request)
        if isinstance(reason, Response):
            return reason
        return await apply(
            request,
            "delete",
            name,
            lambda store, actor: store.delete(name, actor=actor, reason=reason),
        )

    def flag_action(action: str) -> Callable[[Request], Any]:
        async def act(request: Request) -> Response:
            name = request.path_params["name"]
            if flag_store(ctx) is None:
                return error(503, "flags_unavailable", _NO_STORE)
            reason = await read_reason(request)
            if isinstance(reason, Response):
                return reason
            return await apply(
                request,
                action,
                name,
                lambda store, actor: getattr(store, action)(name, actor=actor, reason=reason),
            )

        act.__name__ = f"flag_{action}"
        act.__doc__ = f"{action.capitalize()} a flag."
        return act

    def route(path: str, *handlers: tuple[str, Access, Any, tuple[str, ...]]) -> Route:
        """One route for ``path`` dispatching each method to its guarded endpoint (one Route
        per path, so that a 405 lists every method in ``Allow``)."""
        by_method = {
            method: guard(ctx, access, strict_query(endpoint, query))
            for method, access, endpoint, query in handlers
        }

        async def dispatch(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await by_method[method](request)

        name = handlers[0][2].__name__
        return Route(f"{PREFIX}{path}", dispatch, methods=list(by_method), name=name)

    read, operate, pages = Access.READ, Access.OPERATE, ("limit", "before")
    return [
        route("/flags", ("GET", read, list_flags, ()), ("POST", operate, create_flag, ())),
        route(
            "/flags/{name}",
            ("GET", read, get_flag, ()),
            ("PATCH", operate, change_flag, ()),
            ("DELETE", operate, delete_flag, ()),
        ),
        route("/flags/{name}/history", ("GET", read, flag_history, pages)),
        *(
            route(f"/flags/{{name}}/{action}", ("POST", operate, flag_action(action), ()))
            for action in FLAG_ACTIONS
        ),
    ]
