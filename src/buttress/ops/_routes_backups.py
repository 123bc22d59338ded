"""Backups in the admin API, under ``/admin/reliability/backups``, and their scheduled jobs.

Reads (viewer): ``GET /backups`` (per backup name: the newest success and failure, stored
sizes over time as ``[time, bytes]`` pairs, the newest drill with its RTO and RPO, and the
schedules; and the reader's ``role``, null without a token), ``GET /backups/{id}`` (one
backup, its chain and the last verification run by this server) and ``GET
/backups/{name}/drills`` (a name's drill history, newest first).
Changes (operator, audited): ``POST /backups/{id}/verify`` (``{"deep": true}`` also restores
into scratch and checks the copy) and ``POST /backups/{name}/drill`` (restore the newest
backup of ``name`` into scratch and run its configured validation). Both answer with the
result once known, or ``202`` with ``"result": null`` after ``RUN_WAIT`` seconds while the
work goes on (a verification's result then shows in ``GET /backups/{id}``, a drill's in the
history); the same work asked again while it runs answers 409.

The routes serve the ``BackupPlan`` (or a bare ``BackupManager``) attached to the app's
registry as ``backup`` before ``create_app`` (``BackupSettings.open`` and ``buttress serve`` do
this; in code ``plan.attach(registry)``); without one the app has none of them. While the
app's scheduler runs, each scheduled backup is a ``backup:<name>`` job and each scheduled
drill a ``drill:<name>`` job, checked every ``check_interval(every)`` seconds and run when
due (``buttress.backup._schedule``: a restart never postpones one); ``POST
/jobs/<job>/run`` makes that check now. A failed backup or drill is also sent to the health
monitor's alert sinks (source ``backup:<name>`` or ``drill:<name>``), and so is the recovery.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from buttress import _options as opt
from buttress.errors import BackupError
from buttress.events import HealthAlert
from buttress.ops._context import OpsContext
from buttress.ops._http import Access, JSONBody, error, guard, strict_query
from buttress.ops._routes_admin import MAX_PAGE, PREFIX, int_param, record_audit
from buttress.ops._routes_jobs import RUN_WAIT

if TYPE_CHECKING:
    from buttress.backup import BackupPlan

__all__ = ["ROOT", "backup_routes", "backups_view", "plan_of"]

logger = logging.getLogger("buttress.ops")

ROOT = f"{PREFIX}/backups"
MAX_POINTS = 1000
VERIFICATIONS_KEPT = 100


def plan_of(ctx: OpsContext) -> BackupPlan | None:
    """The plan the routes serve: the registry's ``backup`` (a ``BackupPlan``, or a
    ``BackupManager`` taken as a plan without schedules), else None."""
    found = ctx.registry.of_kind("backup")
    if not found:
        return None
    from buttress.backup import BackupManager, BackupPlan

    item = found[0]
    if isinstance(item, BackupPlan):
        return item
    if isinstance(item, BackupManager):
        plan = ctx.extra.get("backup_plan")
        if not isinstance(plan, BackupPlan) or plan.manager is not item:
            plan = ctx.extra["backup_plan"] = BackupPlan(item)
        return plan
    return None


def backups_view(plan: BackupPlan, points: int = 200) -> dict[str, Any]:
    """What ``GET /backups`` answers (read from the catalog: call it in a worker thread)."""
    from buttress.backup._overview import sizes, summarize

    catalog = plan.manager.catalog
    names = {*catalog.source_names(), *plan.backups, *plan.drills}
    items = []
    for name, summary in summarize(catalog, names).items():
        item = summary.to_dict()
        record = catalog.source(name)
        item["strategy"] = None if record is None else record.strategy
        item["sizes"] = [list(point) for point in sizes(catalog, name, points)]
        backup, drill = plan.backups.get(name), plan.drills.get(name)
        item["schedule"] = None if backup is None else backup.to_dict()
        item["drill_schedule"] = None if drill is None else drill.to_dict()
        items.append(item)
    return {"destination": plan.manager.destination.describe(), "backups": items}


class _Alerts:
    """Failed backups and drills to the monitor's sinks, and the first success after one."""

    def __init__(self, ctx: OpsContext) -> None:
        self.ctx = ctx
        self.failing: set[str] = set()

    async def _send(self, alert: HealthAlert) -> None:
        sinks = () if self.ctx.monitor is None else self.ctx.monitor.sinks
        for sink in sinks:
            try:
                await sink.send(alert)
            except Exception:
                logger.exception("alert sink %r failed on %s", sink, alert.source)

    async def failed(self, source: str, output: str) -> None:
        self.failing.add(source)
        await self._send(HealthAlert(source, self.ctx.clock.time(), "pass", "fail", output))

    async def passed(self, source: str) -> None:
        if source in self.failing:
            self.failing.discard(source)
            now = self.ctx.clock.time()
            await self._send(HealthAlert(source, now, "fail", "pass", "succeeded again"))


def _schedule(ctx: OpsContext, plan: BackupPlan, alerts: _Alerts) -> None:
    """Add a job per scheduled backup and drill (at startup; a taken name is left alone)."""
    from buttress.backup._schedule import check_interval

    if ctx.scheduler is None:
        return
    taken = {job.name for job in ctx.scheduler.jobs()}

    def backup_job(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if not await asyncio.to_thread(plan.backup_due, name):
                return
            try:
                await asyncio.to_thread(plan.run_backup, name)
            except Exception as exc:
                await alerts.failed(f"backup:{name}", str(exc))
                raise
            await alerts.passed(f"backup:{name}")

        return run

    def drill_job(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if not await asyncio.to_thread(plan.drill_due, name):
                return
            result = await asyncio.to_thread(plan.run_drill, name)
            if not result.ok:
                await alerts.failed(f"drill:{name}", result.error or "failed")
                raise BackupError(f"drill of {name!r} failed: {result.error}")
            await alerts.passed(f"drill:{name}")

        return run

    for prefix, schedules, make in (
        ("backup", plan.backups, backup_job),
        ("drill", plan.drills, drill_job),
    ):
        for name, schedule in schedules.items():
            every = schedule.every
            if every is None or f"{prefix}:{name}" in taken:
                continue
            interval = check_interval(opt.duration("every", every))
            ctx.scheduler.add(f"{prefix}:{name}", make(name), interval=interval, jitter=0.05)


async def _body(request: Request, allowed: frozenset[str]) -> dict[str, Any] | Response:
    """The JSON object body (empty: ``{}``) with only ``allowed`` keys, or a 400."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return error(400, "bad_request", "the body must be JSON")
    if not isinstance(data, dict) or set(data) - allowed:
        keys = ", ".join(sorted(allowed))
        return error(400, "bad_request", f"the body must be an object with only: {keys}")
    reason = data.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
        return error(400, "bad_request", "reason must be a string of at most 500 characters")
    return data


def backup_routes(ctx: OpsContext) -> list[Route]:
    """The routes, each behind its guard, and the jobs; none without a plan attached."""
    plan = plan_of(ctx)
    if plan is None:
        return []
    alerts = _Alerts(ctx)
    ctx.on_startup.append(lambda: _schedule(ctx, plan, alerts))
    running: dict[str, asyncio.Task[Any]] = {}
    verified: dict[str, dict[str, Any]] = {}
    catalog = plan.manager.catalog

    def known_name(name: str) -> bool:
        names = {*catalog.names(), *catalog.source_names(), *plan.backups, *plan.drills}
        return name in names

    async def in_background(
        key: str, work: Callable[[], Any], done: Callable[[Any], None] | None = None
    ) -> tuple[bool, Any]:
        """Run ``work`` in a thread in a task of its own (``done(result)`` then runs in the
        event loop); (finished, result) after at most RUN_WAIT seconds."""
        task = running[key] = asyncio.get_running_loop().create_task(asyncio.to_thread(work))

        def finished(task: asyncio.Task[Any]) -> None:
            running.pop(key, None)
            if done is not None and not task.cancelled() and task.exception() is None:
                done(task.result())

        task.add_done_callback(finished)
        ended, _ = await asyncio.wait({task}, timeout=RUN_WAIT)
        return bool(ended), task.result() if ended else None

    async def list_backups(request: Request) -> Response:
        """Per name: newest success and failure, sizes over time, newest drill, schedules."""
        points = int_param(request, "points", 200, MAX_POINTS)
        if isinstance(points, Response):
            return points
        assert points is not None
        view = await run_in_threadpool(backups_view, plan, points)
        # the reader's role, so that the dashboard offers the changes only to whom may make them
        token = getattr(request.state, "token", None)
        view["role"] = None if token is None else str(token.role)
        return JSONBody(view)

    async def show_backup(request: Request) -> Response:
        """One backup, its chain (full first) and its last verification here."""
        backup_id = request.path_params["id"]
        try:
            backup = await run_in_threadpool(catalog.get, backup_id)
        except BackupError:
            return error(404, "not_found", f"no backup {backup_id!r} in the catalog")
        try:
            chain: list[str] | None = [
                b.id for b in await run_in_threadpool(plan.manager.chain, backup_id)
            ]
        except BackupError:
            chain = None  # running, failed, or a parent is gone
        check = {"running": True} if f"verify:{backup_id}" in running else verified.get(backup_id)
        return JSONBody({"backup": backup.to_dict(), "chain": chain, "verification": check})

    async def drill_history(request: Request) -> Response:
        """A name's drills, newest first, with their RTO, RPO and checks."""
        name = request.path_params["name"]
        limit = int_param(request, "limit", 50, MAX_PAGE)
        if isinstance(limit, Response):
            return limit
        assert limit is not None
        if not await run_in_threadpool(known_name, name):
            return error(404, "not_found", f"no backups or drills named {name!r}")
        found = await run_in_threadpool(lambda: catalog.drills(name, limit=limit))
        return JSONBody({"name": name, "drills": [d.to_dict() for d in found]})

    async def verify_backup(request: Request) -> Response:
        """Re-hash every artifact of a backup (``deep``: also restore it into scratch)."""
        backup_id = request.path_params["id"]
        data = await _body(request, frozenset({"deep", "reason"}))
        if isinstance(data, Response):
            return data
        deep = data.get("deep", False)
        if not isinstance(deep, bool):
            return error(400, "bad_request", "deep must be true or false")
        try:
            await run_in_threadpool(catalog.get, backup_id)
        except BackupError:
            return error(404, "not_found", f"no backup {backup_id!r} in the catalog")
        key = f"verify:{backup_id}"
        if key in running:
            return error(409, "conflict", f"backup {backup_id} is being verified")

        def keep(result: dict[str, Any]) -> None:
            verified.pop(backup_id, None)
            verified[backup_id] = {**result, "at": ctx.clock.time()}
            while len(verified) > VERIFICATIONS_KEPT:
                verified.pop(next(iter(verified)))

        def work() -> dict[str, Any]:
            return plan.manager.verify(backup_id, deep=deep).to_dict()

        done, result = await in_background(key, work, keep)
        after = {"ok": result["ok"], "deep": deep} if done else {"outcome": "running"}
        audit = await record_audit(
            ctx, request, "backup.verify", backup_id, None, after, data.get("reason")
        )
        if isinstance(audit, Response):
            return audit
        body = {"backup_id": backup_id, "result": result, "audit_id": audit}
        return JSONBody(body, 200 if done else 202)

    async def start_drill(request: Request) -> Response:
        """Restore the newest backup of a name into scratch, validate, record RTO and RPO."""
        name = request.path_params["name"]
        data = await _body(request, frozenset({"reason"}))
        if isinstance(data, Response):
            return data
        if not await run_in_threadpool(known_name, name):
            return error(404, "not_found", f"no backups or drills named {name!r}")
        key = f"drill:{name}"
        if key in running:
            return error(409, "conflict", f"a drill of {name!r} is running")
        done, drill = await in_background(key, lambda: plan.run_drill(name))
        result = None if drill is None else drill.to_dict()
        after = (
            {"ok": drill.ok, "rto_seconds": drill.rto_seconds, "rpo_seconds": drill.rpo_seconds}
            if done
            else {"outcome": "running"}
        )
        audit = await record_audit(
            ctx, request, "backup.drill", name, None, after, data.get("reason")
        )
        if isinstance(audit, Response):
            return audit
        return JSONBody({"name": name, "result": result, "audit_id": audit}, 200 if done else 202)

    def route(
        path: str, access: Access, endpoint: Any, method: str, query: tuple[str, ...] = ()
    ) -> Route:
        checked = guard(ctx, access, strict_query(endpoint, query))
        return Route(
            f"{ROOT}{path}", checked, methods=[method], name=f"backups_{endpoint.__name__}"
        )

    read, operate = Access.READ, Access.OPERATE
    return [
        route("", read, list_backups, "GET", ("points",)),
        route("/{id}", read, show_backup, "GET"),
        route("/{name}/drills", read, drill_history, "GET", ("limit",)),
        route("/{id}/verify", operate, verify_backup, "POST"),
        route("/{name}/drill", operate, start_drill, "POST"),
    ]
