"""The OpenAPI description of the dead letter queue routes (``_routes_dlq``), merged into the
app's document by ``openapi_document``."""

from __future__ import annotations

from typing import Any

from buttress.dlq import Classification, Status
from buttress.health import CONTENT_TYPE
from buttress.ops._dlq_params import MAX_IDS, MAX_SCAN
from buttress.ops._http import MAX_REASON
from buttress.ops._openapi import _AUTH_ERRORS, JSON, _error, _obj, _query, _ref

__all__ = ["dlq_paths"]

_STR = {"type": "string"}
_TEXT = {"type": ["string", "null"], "minLength": 1}
_NUM = {"type": "number"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_MAYBE_NUM = {"type": ["number", "null"]}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
_STATUS = {"type": "string", "enum": [s.value for s in Status]}
_KIND = {"type": "string", "enum": [c.value for c in Classification]}
_ID = {"type": "string", "pattern": "^[0-9]{1,18}$"}
_REASON = {"type": ["string", "null"], "maxLength": MAX_REASON, "pattern": r"\S"}
_REQUIRED_REASON = {"type": "string", "minLength": 1, "maxLength": MAX_REASON, "pattern": r"\S"}

ATTEMPT = _obj(
    {"number": _INT, "at": _NUM, "error_type": _STR, "message": _STR, "classification": _KIND}
)
LETTER = _obj(
    {
        "id": _STR,
        "queue": _STR,
        "payload": {},
        "headers": {"type": "object", "additionalProperties": _STR},
        "key": {"type": ["string", "null"]},
        "error": _obj({"type": _STR, "message": _STR, "traceback": _STR}),
        "classification": _KIND,
        "history": {"type": "array", "items": ATTEMPT},
        "first_failed_at": _NUM,
        "last_failed_at": _NUM,
        "next_attempt_at": _MAYBE_NUM,
        "max_attempts": _INT,
        "attempts": _INT,
        "status": _STATUS,
        "updated_at": _NUM,
        "note": _STR,
    }
)
PAGE = _obj({"items": {"type": "array", "items": LETTER}, "cursor": {"type": ["string", "null"]}})
STATS = _obj(
    {
        "name": _STR,
        "time": _NUM,
        "total": _INT,
        "by_status": _COUNTS,
        "by_queue": {"type": "object", "additionalProperties": _COUNTS},
        "by_classification": _COUNTS,
        "by_error_type": _COUNTS,
        "oldest_pending_at": _MAYBE_NUM,
        "oldest_pending_age": _MAYBE_NUM,
        "arrival_rate": _NUM,
        "rate_window": _NUM,
        "parked": _INT,
        "config": {"type": "object"},
    }
)
BRIEF = _obj(
    {
        "id": _STR,
        "queue": _STR,
        "status": _STATUS,
        "attempts": _INT,
        "max_attempts": _INT,
        "next_attempt_at": _MAYBE_NUM,
        "updated_at": _NUM,
        "note": _STR,
        "payload": {},
    },
    required=["id", "queue", "status", "attempts", "max_attempts", "next_attempt_at"],
)
ACTION = _obj(
    {
        "id": _STR,
        "action": {"type": "string", "enum": ["retry", "edit", "discard"]},
        "before": BRIEF,
        "after": BRIEF,
        "audit_id": _INT,
    }
)
FILTER_FIELDS: dict[str, Any] = {
    "queue": _TEXT,
    "status": {"enum": [*_STATUS["enum"], None]},
    "classification": {"enum": [*_KIND["enum"], None]},
    "error_type": _TEXT,
    "since": _MAYBE_NUM,
    "until": _MAYBE_NUM,
    "ids": {"type": ["array", "null"], "items": _ID, "maxItems": MAX_IDS},
}
CONFIRMATION = _obj(
    {
        "error": {"const": "confirmation_required"},
        "detail": _STR,
        "matched": _INT,
        "more": _BOOL,
        "ids": {"type": "array", "items": _ID, "maxItems": MAX_SCAN},
    }
)
BATCH = _obj(
    {
        "action": {"type": "string", "enum": ["retry_many", "purge"]},
        "filter": {"type": "object"},
        "count": _INT,
        "audit_id": _INT,
    }
)
BUCKET = _obj(
    {"start": _NUM, "total": _INT, "by_classification": _COUNTS, "by_error_type": _COUNTS}
)
FAILURES = _obj(
    {
        "since": _NUM,
        "until": _NUM,
        "bucket": _NUM,
        "buckets": {"type": "array", "items": BUCKET},
        "classifications": {"type": "array", "items": _STR},
        "error_types": {"type": "array", "items": _STR},
        "scanned": _INT,
        "truncated": _BOOL,
    }
)
_CHECK = _obj(
    {
        "componentId": _STR,
        "componentType": _STR,
        "observedValue": {"type": ["number", "null"]},
        "observedUnit": _STR,
        "status": {"type": "string", "enum": ["pass", "warn", "fail"]},
        "time": _STR,
        "output": _STR,
    },
    required=["componentId", "status", "time"],
)
HEALTH = _obj(
    {
        "status": {"type": "string", "enum": ["pass", "warn", "fail"]},
        "description": _STR,
        "output": _STR,
        "checks": {"type": "object", "additionalProperties": {"type": "array", "items": _CHECK}},
    },
    required=["status", "checks"],
)
_ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": _STR}
_UNAVAILABLE = "the dead letter store is unreachable"


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _closed(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {**_obj(properties, required=required), "additionalProperties": False}


def _mutation(
    summary: str, ok: dict[str, Any], body: dict[str, Any], *, required: bool = False
) -> dict[str, Any]:
    return {
        "summary": summary,
        "tags": ["dlq"],
        "security": [{"bearerAuth": []}],
        "requestBody": {"required": required, "content": {JSON: {"schema": body}}},
        "responses": {
            "200": _json(ok, "done, and audited"),
            "400": _error("the body is invalid (the detail says why)"),
            **_AUTH_ERRORS,
            "413": _error("the body is too large"),
            "500": _error("applied, but the audit log could not be written"),
            "503": _error(_UNAVAILABLE),
        },
    }


def _one(summary: str, body: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    op = _mutation(summary, ACTION, body, required=required)
    op["parameters"] = [_ID_PARAM]
    op["responses"]["404"] = _error("no dead letter has this id")
    op["responses"]["409"] = _error("the dead letter's status does not allow this")
    return {"post": op}


def dlq_paths(admin: str, read: Any) -> dict[str, Any]:
    """The paths of the DLQ routes; ``read`` builds a read operation as the document does."""
    root = f"{admin}/dlq"

    def reading(summary: str, schema: dict[str, Any], params: list[Any]) -> dict[str, Any]:
        op: dict[str, Any] = read(summary, _json(schema), params or None)
        op["get"]["tags"] = ["dlq"]
        op["get"]["responses"]["503"] = _error(_UNAVAILABLE)
        return op

    def query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema}

    filters = [
        query("queue", {"type": "string", "minLength": 1}),
        query("status", _STATUS),
        query("classification", _KIND),
        query("error_type", {"type": "string", "minLength": 1}),
        query("since", _NUM),
        query("until", _NUM),
    ]
    listing = reading(
        "Dead letters, newest first, whole (payload, headers, error, history)",
        PAGE,
        [
            *filters,
            _query("limit", "records per page (default 50)", 500),
            query("cursor", {"type": "string", "pattern": "^[0-9]{1,18}$"}),
        ],
    )
    one = reading("One dead letter, whole", LETTER, [_ID_PARAM])
    one["get"]["responses"]["404"] = _error("no dead letter has this id")
    failures = reading(
        "Failed attempts per time bucket by classification and error type (default: the "
        "last day in hours; at most 1000 buckets; the newest 10,000 records are looked at)",
        FAILURES,
        [
            query("bucket", {"type": "number", "minimum": 1}),
            query("since", _NUM),
            query("until", _NUM),
            query("queue", {"type": "string"}),
        ],
    )
    reason_only = _closed({"reason": _REASON}, [])
    edit = _closed({"payload": {}, "reason": _REASON, "retry": _BOOL}, ["payload"])
    discard = _closed({"reason": _REQUIRED_REASON}, ["reason"])
    retry_many = _closed({**FILTER_FIELDS, "reason": _REASON}, [])
    purge = _closed({**FILTER_FIELDS, "reason": _REASON, "confirm": _BOOL}, [])
    purge_op = _mutation(
        'Delete the matching dead letters (needs "confirm": true; without it, a 400 '
        "saying how many match and their ids; ids in the confirmation delete only those that "
        "still match)",
        BATCH,
        purge,
        required=True,
    )
    purge_op["responses"]["400"] = _json(
        {"anyOf": [CONFIRMATION, _ref("Error")]},
        'the body is invalid, or confirmation_required (no "confirm": true): how many match '
        "(matched, more: there are more than counted) and their ids (newest first)",
    )
    health = {
        "get": {
            "summary": "The dead letter queue's health: parked, pending, oldest pending age, "
            "arrival rate, graded by thresholds",
            "tags": ["health"],
            "security": [],
            "responses": {
                "200": {
                    "description": "pass or warn",
                    "content": {CONTENT_TYPE: {"schema": HEALTH}},
                },
                "503": {
                    "description": "fail (or the store is unreachable)",
                    "content": {CONTENT_TYPE: {"schema": HEALTH}},
                },
            },
        }
    }
    return {
        "/health/dlq": health,
        f"{root}/stats": reading("Dead letter counts, oldest pending, arrival rate", STATS, []),
        f"{root}/messages": listing,
        f"{root}/messages/{{id}}": one,
        f"{root}/messages/{{id}}/retry": _one(
            "Make a pending or parked dead letter due now", reason_only
        ),
        f"{root}/messages/{{id}}/edit": _one(
            "Replace a pending or parked dead letter's payload (retry: true also retries it)",
            edit,
            required=True,
        ),
        f"{root}/messages/{{id}}/discard": _one(
            "Discard an open dead letter, for a reason", discard, required=True
        ),
        f"{root}/retry-many": {
            "post": _mutation(
                "Retry every pending or parked dead letter matching the filter",
                BATCH,
                retry_many,
            )
        },
        f"{root}/purge": {"post": purge_op},
        f"{root}/failures": failures,
    }
