"""Rate limits and load shedding in the admin API: ``GET /admin/reliability/limits`` (read).

Every rate limiter, concurrency limiter, adaptive throttle and work queue of the app's registry
with its current state (``_limits_view.limits_view``). The route is always there, as limiters
are often registered after the app is created: while none is, the lists are empty (the
dashboard then hides its panel). The view is built in a worker thread: a fleet limiter's state
is read from its store, which must not block the event loop.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from buttress.ops._context import OpsContext
from buttress.ops._http import Access, JSONBody, guard, strict_query
from buttress.ops._limits_view import limits_view
from buttress.ops._routes_admin import PREFIX

__all__ = ["PATH", "limit_routes"]

PATH = f"{PREFIX}/limits"


def limit_routes(ctx: OpsContext) -> list[Route]:
    """``GET /admin/reliability/limits`` behind the read guard."""

    async def limits(request: Request) -> Response:
        """Every limiter, load shedder and work queue with its state (none: empty lists)."""
        return JSONBody(await run_in_threadpool(limits_view, ctx.registry))

    endpoint = guard(ctx, Access.READ, strict_query(limits))
    return [Route(PATH, endpoint, methods=["GET"], name="limits")]
