"""``create_app``: the ops Starlette app (health, admin API, OpenAPI, metrics); ``serve``."""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from buttress import _options as opt
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress.health import HealthMonitor, HealthRegistry
from buttress.ops._audit import AuditLog
from buttress.ops._context import OpsContext
from buttress.ops._dashboard import dashboard_routes, end_streams
from buttress.ops._events import EventLog, HealthHistory
from buttress.ops._http import Access, BodyLimitMiddleware, JSONBody, guard, http_error
from buttress.ops._jobs import attach_scheduler
from buttress.ops._middleware import ReliabilityMiddleware
from buttress.ops._openapi import openapi_document
from buttress.ops._routes_admin import admin_routes
from buttress.ops._routes_backups import backup_routes
from buttress.ops._routes_degradation import degradation_routes
from buttress.ops._routes_dlq import dlq_routes
from buttress.ops._routes_flags import flag_routes
from buttress.ops._routes_health import health_routes
from buttress.ops._routes_http import http_client_routes
from buttress.ops._routes_jobs import job_routes
from buttress.ops._routes_limits import limit_routes
from buttress.ops._state import StateStore
from buttress.ops._tokens import FailureLimiter, TokenSet
from buttress.registry import Registry

if TYPE_CHECKING:
    import uvicorn

    from buttress.dlq import DeadLetterQueue
    from buttress.ops.scheduler import Scheduler

__all__ = ["create_app", "make_server", "serve"]


def create_app(
    registry: Registry,
    *,
    health: HealthRegistry | None = None,
    tokens: Iterable[Any] = (),
    public_reads: bool = False,
    state_dir: str | os.PathLike[str] = ".buttress",
    state: StateStore | None = None,
    max_body_bytes: int = 65536,
    protected: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    routes: Sequence[BaseRoute] | Callable[[OpsContext], Sequence[BaseRoute]] = (),
    auth_failures: int = 10,
    auth_window: float = 60.0,
    scheduler: bool | Scheduler | None = True,
    monitor: HealthMonitor | None = None,
    dlq: DeadLetterQueue | None = None,
) -> Starlette:
    """The ops app for ``registry``: ``/health/...`` (public), ``/admin/reliability/...``,
    ``/admin/openapi.json``, the live dashboard at ``/`` (``buttress.ops._dashboard``) and,
    when ``buttress.telemetry`` is installed, ``/metrics``.

    ``health``: the checks (default: a new ``HealthRegistry`` with its built-in checks).
    ``tokens``: ``(name, role, sha256_hex)`` items; none means the admin API refuses everyone.
    ``public_reads`` (default False) lets reads through without a token. ``state_dir`` (default
    ``.buttress``; ``":memory:"`` for none) holds ``buttress.db``, opened on first use, unless a
    ``state`` store is given. ``max_body_bytes`` (default 64 KiB) bounds request bodies.
    ``protected`` (prefix -> pipeline name) wraps the app in ``ReliabilityMiddleware``.
    ``routes`` adds routes (before the dashboard's): a list, or a function of the ``OpsContext``
    returning one (guard them with ``buttress.ops.guard``). ``auth_failures`` failed
    authentications within ``auth_window`` seconds (default 10 in 60 s) block a client (429).

    ``app.state.ops`` is the ``OpsContext``; its ``on_startup``/``on_shutdown`` hooks run in
    the lifespan. A mounted app gets no lifespan events: call ``app.state.ops.close()`` when done.

    ``scheduler`` (default True: a new ``Scheduler``; None: no jobs) runs, while the lifespan
    lasts, the health monitor every ``monitor.interval`` (``monitor`` defaults to a
    ``HealthMonitor`` of ``health``), breaker monitoring every two minutes and the reliability
    report every hour (see ``buttress.ops._jobs``); ``ctx.scheduler`` takes more jobs.

    ``dlq`` (a ``DeadLetterQueue``) is attached to ``registry``; with one attached, the app has
    ``/health/dlq``, the DLQ admin API and its jobs (``buttress.ops._routes_dlq``).
    """
    clock = clock if clock is not None else SYSTEM_CLOCK
    max_body_bytes = opt.integer("max_body_bytes", max_body_bytes, minimum=0)
    ctx = OpsContext(
        registry=registry,
        health=health if health is not None else HealthRegistry(clock=clock),
        tokens=TokenSet(tokens),
        limiter=FailureLimiter(max_failures=auth_failures, window=auth_window, clock=clock),
        store=(store := state if state is not None else StateStore.in_directory(state_dir)),
        audit=AuditLog(store, clock=clock),
        events=EventLog(),
        history=HealthHistory(),
        clock=clock,
        public_reads=bool(public_reads),
        max_body_bytes=max_body_bytes,
        started=clock.time(),
        owns_store=state is None,
    )
    metrics = _metrics_route(ctx)
    flags = flag_routes(ctx)  # none unless the registry has a flag store
    degradation = degradation_routes(ctx)  # none unless the registry has a manager
    dead_letters = dlq_routes(ctx, dlq)  # none unless a DLQ is attached or given
    backups = backup_routes(ctx)  # none unless a BackupPlan is attached as "backup"

    async def openapi(request: Request) -> Response:
        """The OpenAPI document of this app."""
        root = request.scope.get("root_path") or None
        return JSONBody(
            openapi_document(
                public_reads=ctx.public_reads,
                server=root,
                metrics=bool(metrics),
                flags=bool(flags),
                degradation=bool(degradation),
                dlq=bool(dead_letters),
                backups=bool(backups),
            )
        )

    all_routes: list[BaseRoute] = [
        *health_routes(ctx),
        *admin_routes(ctx),
        *job_routes(ctx),
        *degradation,
        *flags,
        *dead_letters,
        *backups,
        *http_client_routes(ctx),  # an empty list until an HTTP client is registered
        *limit_routes(ctx),  # empty lists until a limiter, shedder or queue is registered
        Route("/admin/openapi.json", openapi, methods=["GET"], name="openapi"),
        *([metrics] if metrics is not None else []),
        *(routes(ctx) if callable(routes) else routes),
        *dashboard_routes(ctx),  # after the caller's routes, which may replace "/"
    ]
    middleware = [Middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)]
    if protected:
        middleware.append(Middleware(ReliabilityMiddleware, registry=registry, routes=protected))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await ctx.startup()
        await ctx.health.run(None, wait=False)  # start every check now, in the background
        try:
            yield
        finally:
            await ctx.shutdown()

    app = Starlette(
        routes=all_routes,
        middleware=middleware,
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.ops = ctx
    attach_scheduler(ctx, scheduler, monitor)
    ctx.open()  # also without a lifespan (a mounted app, an in-process client)
    return app


def _metrics_route(ctx: OpsContext) -> Route | None:
    """``GET /metrics`` from ``buttress.telemetry`` when that module exists (a read endpoint).

    HOOK(/metrics): the Prometheus exposition is the telemetry module's: ``render(registry,
    health=None) -> bytes`` and ``CONTENT_TYPE``. Until it exists, the app has no ``/metrics``.
    """
    if importlib.util.find_spec("buttress.telemetry") is None:
        return None
    telemetry = importlib.import_module("buttress.telemetry")
    render = getattr(telemetry, "render", None)
    content_type = getattr(telemetry, "CONTENT_TYPE", None)
    if render is None or content_type is None:
        return None

    # The health registry is passed only if it offers what telemetry reads (``last_results``).
    health = ctx.health if callable(getattr(ctx.health, "last_results", None)) else None
    render(ctx.registry, health=health)  # starts counting breaker transitions now

    async def metrics(request: Request) -> Response:
        """The Prometheus exposition of every policy's counters."""
        return Response(render(ctx.registry, health=health), media_type=content_type)

    return Route("/metrics", guard(ctx, Access.READ, metrics), methods=["GET"], name="metrics")


def make_server(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 8000, **options: Any
) -> uvicorn.Server:
    """A uvicorn server for ``app``, not started: ``server.run()`` blocks, ``await
    server.serve()`` runs in a loop, ``server.should_exit = True`` stops it. Binds 127.0.0.1 by
    default; ``port=0`` picks a free port; ``options`` go to ``uvicorn.Config``."""
    import uvicorn

    options.setdefault("server_header", False)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            end_streams(app)  # uvicorn waits for open responses: end the live streams first
            await super().shutdown(sockets)

    return Server(uvicorn.Config(app, host=host, port=port, **options))


def serve(app: ASGIApp, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serve ``app`` with uvicorn until interrupted; binds 127.0.0.1 (loopback only) by default.
    ``options`` go to ``uvicorn.Config`` (``log_level``, ``proxy_headers``...)."""
    make_server(app, host, port, **options).run()
