"""The scheduled jobs in the admin API: list them, page a job's stored runs, run one now.

``GET /admin/reliability/jobs`` (viewer) answers ``{"jobs": [Job.to_dict(), ...]}`` (empty when
the app has no scheduler). ``GET .../jobs/{name}/runs`` pages the runs kept in the state store.
``POST .../jobs/{name}/run`` (operator, audited) runs the job now and answers with the run once
it ends, or ``202`` with ``"run": null`` if it takes longer than ``RUN_WAIT`` seconds (it goes
on in the background; a run already in progress makes this one ``skipped``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from buttress.errors import StoreError
from buttress.ops._context import OpsContext
from buttress.ops._http import Access, JSONBody, error, guard, read_reason, strict_query
from buttress.ops._routes_admin import MAX_PAGE, PREFIX, int_param, record_audit
from buttress.ops.scheduler import Job

__all__ = ["RUN_WAIT", "job_routes"]

logger = logging.getLogger("buttress.ops")

RUN_WAIT = 10.0
"""Seconds ``POST .../run`` waits for the run to end before answering 202."""


def job_routes(ctx: OpsContext) -> list[Route]:
    """The routes under ``/admin/reliability/jobs``."""

    def find(name: str) -> Job | Response:
        if ctx.scheduler is not None:
            try:
                return ctx.scheduler.get(name)
            except KeyError:
                pass
        return error(404, "not_found", f"no scheduled job named {name!r}")

    async def list_jobs(request: Request) -> Response:
        """Every scheduled job: interval, counts, next and last run."""
        jobs = [] if ctx.scheduler is None else ctx.scheduler.jobs()
        return JSONBody({"jobs": [job.to_dict() for job in jobs]})

    async def job_runs(request: Request) -> Response:
        """A job's stored runs, newest first; ``before`` (a run id) pages back."""
        job = find(request.path_params["name"])
        if isinstance(job, Response):
            return job
        limit = int_param(request, "limit", 50, MAX_PAGE)
        before = int_param(request, "before", None, 2**62)
        if isinstance(limit, Response):
            return limit
        if isinstance(before, Response):
            return before
        assert limit is not None
        history = ctx.extra.get("job_history")
        runs: list[dict[str, Any]] = []
        if history is not None:
            try:
                runs = await run_in_threadpool(
                    history.page, job.name, limit=limit + 1, before=before
                )
            except StoreError as exc:
                logger.error("job history read failed: %s", exc)
                return error(500, "store_error", "the job history cannot be read")
        more = len(runs) > limit
        runs = runs[:limit]
        return JSONBody({"runs": runs, "next_before": runs[-1]["id"] if more else None})

    async def run_job(request: Request) -> Response:
        """Run a job now; answer with the run (202 and no run if it is still going)."""
        job = find(request.path_params["name"])
        if isinstance(job, Response):
            return job
        assert ctx.scheduler is not None
        reason = await read_reason(request)
        if isinstance(reason, Response):
            return reason
        before = None if job.last is None else job.last.to_dict()
        task = ctx.scheduler.spawn(job.name)
        done, _ = await asyncio.wait({task}, timeout=RUN_WAIT)
        if done and task.cancelled():
            return error(503, "stopped", "the scheduler stopped before the run ended")
        run = task.result().to_dict() if done else None
        after = run if run is not None else {"outcome": "running"}
        entry = await record_audit(ctx, request, "job.run", job.name, before, after, reason)
        if isinstance(entry, Response):
            return entry
        body = {"job": job.to_dict(), "run": run, "audit_id": entry}
        return JSONBody(body, 200 if done else 202)

    def route(
        path: str, access: Access, endpoint: Any, method: str, query: tuple[str, ...] = ()
    ) -> Route:
        checked = guard(ctx, access, strict_query(endpoint, query))
        return Route(f"{PREFIX}{path}", checked, methods=[method], name=endpoint.__name__)

    return [
        route("/jobs", Access.READ, list_jobs, "GET"),
        route("/jobs/{name}/runs", Access.READ, job_runs, "GET", ("limit", "before")),
        route("/jobs/{name}/run", Access.OPERATE, run_job, "POST"),
    ]
