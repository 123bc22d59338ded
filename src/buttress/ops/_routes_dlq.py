"""The dead letter queue over HTTP, and its scheduled jobs.

``GET /health/dlq`` (public, ``application/health+json``): parked and pending counts, the
oldest pending record's age and the arrival rate, graded by the queue's ``HealthThresholds``.
Under ``/admin/reliability/dlq`` reads (viewer): ``GET /stats``, ``GET /messages`` (filters,
cursor pages; each record whole: payload, headers, error and traceback, history), ``GET
/messages/{id}``, ``GET /failures`` (failed attempts per time bucket, by classification and
error type). Changes (operator, audited): ``POST /messages/{id}/retry``, ``/edit`` (a new
payload, then optionally a retry) and ``/discard`` (a reason is required), ``POST
/retry-many`` (a filter) and ``POST /purge`` (a filter and ``"confirm": true``; without it, a
400 with the count and ids of the matches, which the confirmation may send back as ``ids`` so
that a record arriving in between is not deleted unseen).

The routes serve the ``DeadLetterQueue`` attached to the app's registry (kind ``dlq``: the one
named ``dlq``, else the first), as ``create_app(dlq=...)``, ``DLQSettings.open`` and
``buttress serve`` do; without one the app has none of them. While the app's scheduler runs,
the jobs ``dlq-process`` (every 5 minutes: ``aprocess()`` then ``check_alerts()``) and
``dlq-cleanup`` (daily) run, as set by the ``Operations`` attached beside the queue (kind
``dlq_operations``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from buttress.dlq import DeadLetter, DeadLetterQueue, Filter
from buttress.dlq._ops import Operations, failure_timeline, health_document, unavailable_document
from buttress.errors import ConfigError, DeadLetterError, StoreError
from buttress.health import CONTENT_TYPE
from buttress.ops._context import OpsContext
from buttress.ops._dlq_params import (
    MAX_SCAN,
    body_filter,
    find_id,
    json_body,
    query_filter,
    query_number,
    reason_of,
    scan,
)
from buttress.ops._http import Access, JSONBody, error, guard, strict_query
from buttress.ops._routes_admin import MAX_PAGE, PREFIX, int_param, record_audit

__all__ = [
    "CLEANUP_JOB",
    "HEALTH_TTL",
    "PROCESS_JOB",
    "attach",
    "dlq_of",
    "dlq_routes",
    "operations_of",
]

logger = logging.getLogger("buttress.ops")

ROOT = f"{PREFIX}/dlq"
PROCESS_JOB, CLEANUP_JOB = "dlq-process", "dlq-cleanup"
HEALTH_TTL = 5.0
"""Seconds ``/health/dlq`` reuses its stats (probes may come often; stats count the store)."""
DAY = 86400.0
_NO_STORE = {"Cache-Control": "no-store"}
_FILTERS = ("queue", "status", "classification", "error_type", "since", "until")


def dlq_of(ctx: OpsContext) -> DeadLetterQueue | None:
    """The queue the routes serve: the registry's ``dlq`` named ``dlq``, else the first."""
    found = ctx.registry.of_kind("dlq")
    for dlq in found:
        if getattr(dlq, "name", None) == "dlq":
            return dlq  # type: ignore[no-any-return]
    return found[0] if found else None


def operations_of(ctx: OpsContext, dlq: DeadLetterQueue) -> Operations:
    """The ``Operations`` attached beside ``dlq`` (same name), else the defaults."""
    try:
        found = ctx.registry.get(dlq.name, "dlq_operations")
    except KeyError:
        return Operations()
    return found if isinstance(found, Operations) else Operations()


def _brief(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "queue": letter.queue,
        "status": letter.status.value,
        "attempts": letter.attempts,
        "max_attempts": letter.max_attempts,
        "next_attempt_at": letter.next_attempt_at,
        "updated_at": letter.updated_at,
        "note": letter.note,
    }


def _unavailable(exc: StoreError) -> Response:
    return error(503, "store_unavailable", f"the dead letter store failed: {exc}")


def _schedule(ctx: OpsContext) -> None:
    """Add the queue's jobs to the app's scheduler (at startup; a taken name is left alone)."""
    dlq = dlq_of(ctx)
    if dlq is None or ctx.scheduler is None:
        return
    operations = operations_of(ctx, dlq)
    taken = {job.name for job in ctx.scheduler.jobs()}

    async def process() -> None:
        report = await dlq.aprocess()
        if report.taken:
            logger.info(
                "dlq %s: %d taken, %d resolved, %d retried later, %d parked",
                dlq.name,
                report.taken,
                report.resolved,
                report.retried,
                report.parked,
            )
        await dlq.check_alerts()

    async def cleanup() -> None:
        deleted = await asyncio.to_thread(dlq.cleanup)
        if deleted:
            logger.info("dlq %s: %d old resolved or discarded records deleted", dlq.name, deleted)

    jobs: dict[str, tuple[Callable[[], Awaitable[None]], float | None]] = {
        PROCESS_JOB: (process, operations.process_interval),
        CLEANUP_JOB: (cleanup, operations.cleanup_interval),
    }
    for name, (fn, interval) in jobs.items():
        if interval is not None and name not in taken:
            ctx.scheduler.add(name, fn, interval=interval)


def attach(ctx: OpsContext, dlq: DeadLetterQueue) -> None:
    """Attach ``dlq`` to the app's registry (kind ``dlq``, its name), unless it is there."""
    if not isinstance(dlq, DeadLetterQueue):
        raise ConfigError("dlq", dlq, "must be a DeadLetterQueue or None")
    if dlq not in ctx.registry.of_kind("dlq"):
        ctx.registry.attach("dlq", dlq, dlq.name)


def dlq_routes(ctx: OpsContext, dlq: DeadLetterQueue | None = None) -> list[Route]:
    """The routes, each behind its guard, and the jobs; none without a queue (``dlq``, which
    is attached to the registry, or one attached before)."""
    if dlq is not None:
        attach(ctx, dlq)
    if dlq_of(ctx) is None:
        return []
    ctx.on_startup.append(lambda: _schedule(ctx))
    cached: dict[str, Any] = {}

    def queue() -> DeadLetterQueue:
        dlq = dlq_of(ctx)
        assert dlq is not None  # attached before the app was created, never detached
        return dlq

    async def health(request: Request) -> Response:
        """The queue's health: parked, pending, oldest pending age, arrival rate, graded."""
        dlq = queue()
        now = ctx.clock.monotonic()
        if cached.get("until", -1.0) <= now:
            try:
                stats = await run_in_threadpool(dlq.stats)
                doc, status = health_document(dlq.name, stats, operations_of(ctx, dlq).health)
            except StoreError:
                doc, status = unavailable_document(dlq.name, ctx.clock.time()), 503
            cached.update(doc=doc, status=status, until=now + HEALTH_TTL)
        return JSONBody(cached["doc"], cached["status"], headers=_NO_STORE, media_type=CONTENT_TYPE)

    async def stats(request: Request) -> Response:
        """Counts by status, queue, classification and error type; oldest pending; arrivals;
        the queue's configuration."""
        dlq = queue()
        try:
            current = await run_in_threadpool(dlq.stats)
        except StoreError as exc:
            return _unavailable(exc)
        return JSONBody({"name": dlq.name, **current.to_dict(), "config": dlq.describe()})

    async def list_messages(request: Request) -> Response:
        """Dead letters matching the filters, newest first; ``cursor`` fetches the next page."""
        found = query_filter(request)
        if isinstance(found, Response):
            return found
        limit = int_param(request, "limit", 50, MAX_PAGE)
        if isinstance(limit, Response):
            return limit
        assert limit is not None
        cursor = request.query_params.get("cursor")
        dlq = queue()
        try:
            page = await run_in_threadpool(lambda: dlq.list(found, limit=limit, cursor=cursor))
        except ConfigError as exc:
            return error(400, "bad_request", str(exc))
        except StoreError as exc:
            return _unavailable(exc)
        return JSONBody({"items": [item.to_dict() for item in page.items], "cursor": page.cursor})

    async def get_message(request: Request) -> Response:
        """One dead letter, whole."""
        letter = await find_id(queue(), request.path_params["id"])
        if isinstance(letter, Response):
            return letter
        return JSONBody(letter.to_dict())

    async def failures(request: Request) -> Response:
        """Failed attempts per time bucket, by classification and error type (the chart)."""
        now = ctx.clock.time()
        bucket = query_number(request, "bucket", 3600.0, minimum=1.0)
        since = query_number(request, "since", None)
        until = query_number(request, "until", None)
        for value in (bucket, since, until):
            if isinstance(value, Response):
                return value
        assert isinstance(bucket, float)
        end = until if isinstance(until, float) else now
        start = since if isinstance(since, float) else end - DAY
        if end <= start or (end - start) / bucket > 1000:
            return error(400, "bad_request", "until must be after since, in at most 1000 buckets")
        queue_name = request.query_params.get("queue") or None
        dlq = queue()
        try:
            letters, more = await run_in_threadpool(scan, dlq, Filter(queue=queue_name), MAX_SCAN)
        except StoreError as exc:
            return _unavailable(exc)
        body = failure_timeline(letters, since=start, until=end, bucket=bucket)
        return JSONBody({**body, "scanned": len(letters), "truncated": more})

    async def act(
        request: Request,
        action: str,
        change: Callable[[DeadLetterQueue, str, dict[str, Any]], DeadLetter],
        *,
        allowed: frozenset[str] = frozenset({"reason"}),
        reason_required: bool = False,
        with_payload: bool = False,
    ) -> Response:
        """One record's change: parse, check it exists, apply, audit, answer before/after."""
        data = await json_body(request)
        if isinstance(data, Response):
            return data
        unknown = sorted(set(data) - allowed)
        if unknown:
            return error(400, "bad_request", f"unknown field {unknown[0]!r} in the body")
        if with_payload and "payload" not in data:
            return error(400, "bad_request", 'the body needs the new payload: {"payload": ...}')
        if not isinstance(data.get("retry", False), bool):
            return error(400, "bad_request", "retry must be true or false")
        reason = reason_of(data, required=reason_required)
        if isinstance(reason, Response):
            return reason
        dlq = queue()
        letter = await find_id(dlq, request.path_params["id"])
        if isinstance(letter, Response):
            return letter
        try:
            after_letter = await run_in_threadpool(change, dlq, letter.id, data)
        except DeadLetterError as exc:
            return error(409, "conflict", str(exc))
        except ConfigError as exc:
            return error(400, "bad_request", str(exc))
        except StoreError as exc:
            return _unavailable(exc)
        before, after = _brief(letter), _brief(after_letter)
        if with_payload:
            before["payload"], after["payload"] = letter.payload, after_letter.payload
        target = f"{dlq.name}/{letter.id}"
        audit = await record_audit(ctx, request, f"dlq.{action}", target, before, after, reason)
        if isinstance(audit, Response):
            return audit
        body = {"id": letter.id, "action": action, "before": before, "after": after}
        return JSONBody({**body, "audit_id": audit})

    async def retry(request: Request) -> Response:
        """Make a pending or parked dead letter due now."""
        return await act(request, "retry", lambda dlq, id, data: dlq.retry(id))

    def edit_and_maybe_retry(dlq: DeadLetterQueue, id: str, data: dict[str, Any]) -> DeadLetter:
        letter = dlq.edit(id, data["payload"])
        return dlq.retry(id) if data.get("retry") else letter

    async def edit(request: Request) -> Response:
        """Replace a pending or parked dead letter's payload (``retry: true`` also retries)."""
        fields = frozenset({"payload", "reason", "retry"})
        return await act(request, "edit", edit_and_maybe_retry, allowed=fields, with_payload=True)

    async def discard(request: Request) -> Response:
        """Give up on an open dead letter, for a reason (required)."""

        def change(dlq: DeadLetterQueue, id: str, data: dict[str, Any]) -> DeadLetter:
            return dlq.discard(id, data["reason"])

        return await act(request, "discard", change, reason_required=True)

    async def many(request: Request, action: str) -> Response:
        """``retry-many`` and ``purge``: a filter in the body, audited with the count."""
        data = await json_body(request)
        if isinstance(data, Response):
            return data
        reason = reason_of(data)
        if isinstance(reason, Response):
            return reason
        data.pop("reason", None)
        confirm = data.pop("confirm", None)
        if confirm is not None and not isinstance(confirm, bool):
            return error(400, "bad_request", "confirm must be true or false")
        found = body_filter(data)
        if isinstance(found, Response):
            return found
        dlq = queue()
        try:
            if action == "purge" and confirm is not True:
                matched, more = await run_in_threadpool(scan, dlq, found, MAX_SCAN)
                count = f"{len(matched)}{'+' if more else ''}"
                return JSONBody(
                    {
                        "error": "confirmation_required",
                        "detail": f"purging deletes the {count} matching dead letters for good: "
                        'send the same request with "confirm": true (and these "ids" to '
                        "delete only them)",
                        "matched": len(matched),
                        "more": more,
                        "ids": [letter.id for letter in matched],
                    },
                    400,
                )
            method = dlq.purge if action == "purge" else dlq.retry_many
            count_done = await run_in_threadpool(method, found)
        except StoreError as exc:
            return _unavailable(exc)
        after = {"filter": found.to_dict(), "count": count_done}
        audit = await record_audit(ctx, request, f"dlq.{action}", dlq.name, None, after, reason)
        if isinstance(audit, Response):
            return audit
        return JSONBody({"action": action, **after, "audit_id": audit})

    async def retry_many(request: Request) -> Response:
        """Retry every pending or parked dead letter matching the filter."""
        return await many(request, "retry_many")

    async def purge(request: Request) -> Response:
        """Delete every dead letter matching the filter (``"confirm": true`` required; with
        ``ids``, only those of them that still match)."""
        return await many(request, "purge")

    def route(
        path: str, access: Access, endpoint: Any, method: str, query: tuple[str, ...] = ()
    ) -> Route:
        checked = guard(ctx, access, strict_query(endpoint, query))
        return Route(path, checked, methods=[method], name=f"dlq_{endpoint.__name__}")

    read, operate = Access.READ, Access.OPERATE
    listing = (*_FILTERS, "limit", "cursor")
    return [
        route("/health/dlq", Access.PUBLIC, health, "GET"),
        route(f"{ROOT}/stats", read, stats, "GET"),
        route(f"{ROOT}/messages", read, list_messages, "GET", listing),
        route(f"{ROOT}/messages/{{id}}", read, get_message, "GET"),
        route(f"{ROOT}/messages/{{id}}/retry", operate, retry, "POST"),
        route(f"{ROOT}/messages/{{id}}/edit", operate, edit, "POST"),
        route(f"{ROOT}/messages/{{id}}/discard", operate, discard, "POST"),
        route(f"{ROOT}/retry-many", operate, retry_many, "POST"),
        route(f"{ROOT}/purge", operate, purge, "POST"),
        route(f"{ROOT}/failures", read, failures, "GET", ("bucket", "since", "until", "queue")),
    ]
