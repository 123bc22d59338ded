"""HTTP clients in the admin API: ``GET /admin/reliability/http-clients`` (read).

Every client registered in the app's registry (``buttress.http``, kind ``http_client``) with
its worst host status and each host's statistics (``HostStats.to_dict()``: requests, outcomes,
success rate and latency percentiles over the recent window, breaker state, status and why).
The route is always there, as clients are often created after the app: while none is
registered the list is empty (the dashboard then hides its panel, as for a capability the app
does not have). Nothing here imports httpx: the statistics are read from the registered objects.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from buttress.ops._context import OpsContext
from buttress.ops._http import Access, JSONBody, guard, strict_query
from buttress.ops._routes_admin import PREFIX

__all__ = ["http_client_paths", "http_client_routes"]

PATH = f"{PREFIX}/http-clients"


def http_clients_view(ctx: OpsContext) -> list[dict[str, Any]]:
    """Each registered client (by name) with its status and its hosts' statistics."""
    view = []
    for client in ctx.registry.http_clients():
        status, stats = client.status()
        hosts = [item.to_dict() for item in stats]
        view.append({"name": client.name, "status": status, "hosts": hosts})
    return view


def http_client_routes(ctx: OpsContext) -> list[Route]:
    """``GET /admin/reliability/http-clients`` behind the read guard."""

    async def http_clients(request: Request) -> Response:
        """Every HTTP client with its per-host statistics (none registered: an empty list)."""
        return JSONBody({"clients": http_clients_view(ctx)})

    endpoint = guard(ctx, Access.READ, strict_query(http_clients))
    return [Route(PATH, endpoint, methods=["GET"], name="http_clients")]


# -- OpenAPI ------------------------------------------------------------------------------------

_STATUS = {"type": "string", "enum": ["pass", "warn", "fail"]}
_COUNT = {"type": "integer", "minimum": 0}
_SECONDS = {"type": ["number", "null"], "minimum": 0}
_HOST = {
    "type": "object",
    "properties": {
        "client": {"type": "string"},
        "host": {"type": "string"},
        "requests": _COUNT,
        "successes": _COUNT,
        "failures": _COUNT,
        "outcomes": {"type": "object", "additionalProperties": _COUNT},
        "attempts": _COUNT,
        "retries": _COUNT,
        "hedges": _COUNT,
        "window_requests": _COUNT,
        "success_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "latency_p50": _SECONDS,
        "latency_p90": _SECONDS,
        "latency_p99": _SECONDS,
        "breaker_state": {"type": ["string", "null"]},
        "status": _STATUS,
        "reason": {"type": "string"},
    },
    "required": ["client", "host", "requests", "success_rate", "status"],
}
_LIST = {
    "type": "object",
    "properties": {
        "clients": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "status": _STATUS,
                    "hosts": {"type": "array", "items": _HOST},
                },
                "required": ["name", "status", "hosts"],
            },
        }
    },
    "required": ["clients"],
}


def http_client_paths(admin: str, read: Any) -> dict[str, Any]:
    """The OpenAPI path of the route (``read`` builds an admin read operation)."""
    ok = {"description": "OK", "content": {"application/json": {"schema": _LIST}}}
    return {admin + "/http-clients": read("HTTP clients and their per-host statistics", ok)}
