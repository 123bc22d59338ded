"""Request parsing for the dead letter queue routes: filters from the query or the body, JSON
bodies (strict: no NaN), reasons, ids, and scanning a queue page by page."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from buttress.dlq import DeadLetter, DeadLetterQueue, Filter
from buttress.errors import ConfigError, StoreError
from buttress.ops._http import MAX_REASON, error

__all__ = [
    "FILTER_FIELDS",
    "MAX_IDS",
    "MAX_SCAN",
    "body_filter",
    "find_id",
    "json_body",
    "query_filter",
    "query_number",
    "reason_of",
    "scan",
]

MAX_SCAN = 10_000
"""Records one failure timeline (or purge preview) looks at, newest first."""
MAX_IDS = 1000
"""Record ids one request's filter may name (a longer list goes in several requests)."""
FILTER_FIELDS = ("queue", "status", "classification", "error_type", "since", "until", "ids")
ID = re.compile(r"[0-9]{1,18}")
"""A record id: decimal, small enough for a 64-bit integer."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def json_body(request: Request) -> dict[str, Any] | Response:
    """The body as a JSON object (empty: ``{}``), or a 400; NaN and Infinity are refused."""
    body = await request.body()
    if not body.strip():
        return {}
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return error(400, "bad_request", "the body must be JSON")
    if not isinstance(data, dict):
        return error(400, "bad_request", "the body must be a JSON object")
    return data


def reason_of(data: dict[str, Any], *, required: bool = False) -> str | Response | None:
    """The body's ``reason`` (left in ``data``), or a 400."""
    reason = data.get("reason")
    if reason is None and not required:
        return None
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        need = "reason is required: " if required else "reason must be "
        return error(400, "bad_request", f"{need}a non-empty string of at most {MAX_REASON} chars")
    return reason


def _number(name: str, raw: object) -> float | Response:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return error(400, "bad_request", f"{name} must be a number")
    try:
        value = float(raw)
    except (ValueError, OverflowError):
        value = math.nan
    if not math.isfinite(value):
        return error(400, "bad_request", f"{name} must be a finite number")
    return value


def query_number(
    request: Request, name: str, default: float | None, *, minimum: float | None = None
) -> float | Response | None:
    """Query parameter ``name`` as a finite float (at least ``minimum``), or the default."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = _number(name, raw)
    if isinstance(value, float) and minimum is not None and value < minimum:
        return error(400, "bad_request", f"{name} must be at least {minimum:g}")
    return value


def _filter(values: dict[str, Any]) -> Filter | Response:
    try:
        return Filter(**values)
    except ConfigError as exc:
        return error(400, "bad_request", str(exc))


def query_filter(request: Request) -> Filter | Response:
    """The listing filter from the query (``queue``, ``status``, ``classification``,
    ``error_type``, ``since``, ``until``)."""
    query = request.query_params
    values: dict[str, Any] = {}
    for name in ("queue", "status", "classification", "error_type"):
        if name in query:
            values[name] = query[name]
    for name in ("since", "until"):
        if name in query:
            number = _number(name, query[name])
            if isinstance(number, Response):
                return number
            values[name] = number
    return _filter(values)


def body_filter(data: dict[str, Any]) -> Filter | Response:
    """A filter from a body holding only filter fields (``ids``: at most 1000 record ids)."""
    unknown = sorted(set(data) - set(FILTER_FIELDS))
    if unknown:
        return error(400, "bad_request", f"unknown field {unknown[0]!r} in the filter")
    values = dict(data)
    for name in ("since", "until"):
        if values.get(name) is not None:
            if isinstance(values[name], str):  # the query takes text; a JSON body, numbers
                return error(400, "bad_request", f"{name} must be a number")
            number = _number(name, values[name])
            if isinstance(number, Response):
                return number
            values[name] = number
    ids = values.get("ids")
    if ids is not None:
        if not isinstance(ids, list) or not all(
            isinstance(i, str) and ID.fullmatch(i) for i in ids
        ):
            return error(400, "bad_request", 'ids must be a list of record ids ("123")')
        if len(ids) > MAX_IDS:
            detail = f"ids holds {len(ids)} record ids; at most {MAX_IDS} go in one request"
            return error(400, "bad_request", detail)
        values["ids"] = tuple(ids)
    return _filter(values)


async def find_id(dlq: DeadLetterQueue, id: str) -> DeadLetter | Response:
    """The record ``id``, or a 404 (a 503 when the store fails)."""
    if not ID.fullmatch(id):
        return error(404, "not_found", f"no dead letter with id {id!r}")
    try:
        letter = await run_in_threadpool(dlq.get, id)
    except StoreError as exc:
        return error(503, "store_unavailable", f"the dead letter store failed: {exc}")
    if letter is None:
        return error(404, "not_found", f"no dead letter with id {id!r}")
    return letter


def scan(dlq: DeadLetterQueue, filter: Filter, limit: int) -> tuple[list[DeadLetter], bool]:
    """Up to ``limit`` records matching ``filter``, newest first, and whether more match."""
    letters: list[DeadLetter] = []
    cursor = None
    while len(letters) < limit:
        page = dlq.list(filter, limit=min(1000, limit - len(letters)), cursor=cursor)
        letters.extend(page.items)
        cursor = page.cursor
        if cursor is None:
            return letters, False
    return letters, True
