"""The OpenAPI description of the backup routes (``_routes_backups``), merged into the app's
document by ``openapi_document``."""

from __future__ import annotations

from typing import Any

from buttress.ops._http import MAX_REASON
from buttress.ops._openapi import _AUTH_ERRORS, JSON, _error, _obj, _query

__all__ = ["backup_paths"]

_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_NUM = {"type": "number"}
_MAYBE_NUM = {"type": ["number", "null"]}
_MAYBE_STR = {"type": ["string", "null"]}
_KIND = {"type": "string", "enum": ["full", "incremental", "differential"]}
_STATUS = {"type": "string", "enum": ["running", "completed", "failed"]}
_REASON = {"type": ["string", "null"], "maxLength": MAX_REASON}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


CHECK = _obj({"name": _STR, "ok": _BOOL, "detail": _STR})
BRIEF = _obj(
    {
        "id": _STR,
        "kind": _KIND,
        "strategy": _STR,
        "status": _STATUS,
        "started_at": _NUM,
        "finished_at": _MAYBE_NUM,
        "duration_seconds": _MAYBE_NUM,
        "size": _INT,
        "data_time": _MAYBE_NUM,
        "error": _MAYBE_STR,
    }
)
_DRILL_FIELDS: dict[str, Any] = {
    "id": {"type": ["integer", "null"]},
    "name": _STR,
    "backup_id": _MAYBE_STR,
    "started_at": _NUM,
    "finished_at": _NUM,
    "ok": _BOOL,
    "rto_seconds": _MAYBE_NUM,
    "rpo_seconds": _MAYBE_NUM,
    "error": _MAYBE_STR,
}
DRILL_BRIEF = _obj(_DRILL_FIELDS)
DRILL = _obj({**_DRILL_FIELDS, "checks": {"type": "array", "items": CHECK}})
RETENTION = _obj(
    {
        "last": _INT,
        "daily": _INT,
        "weekly": _INT,
        "monthly": _INT,
        "yearly": _INT,
        "tz": _STR,
    }
)
SCHEDULE = _obj(
    {
        "name": _STR,
        "every": _MAYBE_NUM,
        "offset": _NUM,
        "kind": _KIND,
        "full_every": _MAYBE_NUM,
        "keep_for": _MAYBE_NUM,
        "retention": _nullable(RETENTION),
    }
)
DRILL_SCHEDULE = _obj(
    {
        "name": _STR,
        "every": _MAYBE_NUM,
        "offset": _NUM,
        "queries": {"type": "array", "items": _STR},
        "files": {"type": "array", "items": _STR},
        "freshness_query": _MAYBE_STR,
    }
)
NAME = _obj(
    {
        "name": _STR,
        "strategy": _MAYBE_STR,
        "completed": _INT,
        "failed": _INT,
        "stored_bytes": _INT,
        "last_success": _nullable(BRIEF),
        "last_failure": _nullable(BRIEF),
        "last_drill": _nullable(DRILL_BRIEF),
        "last_passed_drill": _nullable(DRILL_BRIEF),
        "sizes": {
            "type": "array",
            "description": "[finish time, stored bytes] of the newest completed backups",
            "items": {"type": "array", "items": _NUM, "minItems": 2, "maxItems": 2},
        },
        "schedule": _nullable(SCHEDULE),
        "drill_schedule": _nullable(DRILL_SCHEDULE),
    }
)
LIST = _obj(
    {
        "destination": _STR,
        "backups": {"type": "array", "items": NAME},
        "role": {
            "type": ["string", "null"],
            "enum": ["viewer", "operator", None],
            "description": "the reader's role; null when read without a token (public reads)",
        },
    }
)
ARTIFACT = _obj({"name": _STR, "size": _INT, "sha256": _STR})
BACKUP = _obj(
    {
        "id": _STR,
        "name": _STR,
        "kind": _KIND,
        "strategy": _STR,
        "status": _STATUS,
        "started_at": _NUM,
        "finished_at": _MAYBE_NUM,
        "duration_seconds": _MAYBE_NUM,
        "parent": _MAYBE_STR,
        "size": _INT,
        "artifacts": {"type": "array", "items": ARTIFACT},
        "key_id": _MAYBE_STR,
        "compression": _STR,
        "data_time": _MAYBE_NUM,
        "keep_until": _MAYBE_NUM,
        "tags": {"type": "array", "items": _STR},
        "stats": {"type": "object"},
        "error": _MAYBE_STR,
    }
)
VERIFY_RESULT = _obj(
    {"backup_id": _STR, "ok": _BOOL, "deep": _BOOL, "checks": {"type": "array", "items": CHECK}}
)
SHOW = _obj(
    {
        "backup": BACKUP,
        "chain": {"type": ["array", "null"], "items": _STR},
        "verification": {"type": ["object", "null"]},
    }
)
HISTORY = _obj({"name": _STR, "drills": {"type": "array", "items": DRILL}})
VERIFIED = _obj({"backup_id": _STR, "result": _nullable(VERIFY_RESULT), "audit_id": _INT})
DRILLED = _obj({"name": _STR, "result": _nullable(DRILL), "audit_id": _INT})
VERIFY_BODY = {
    **_obj({"deep": _BOOL, "reason": _REASON}, required=[]),
    "additionalProperties": False,
}
DRILL_BODY = {**_obj({"reason": _REASON}, required=[]), "additionalProperties": False}
_ID = {"name": "id", "in": "path", "required": True, "schema": _STR}
_NAME = {"name": "name", "in": "path", "required": True, "schema": _STR}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _mutation(
    summary: str, body: dict[str, Any], result: dict[str, Any], param: dict[str, Any]
) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "tags": ["backups"],
            "security": [{"bearerAuth": []}],
            "parameters": [param],
            "requestBody": {"required": False, "content": {JSON: {"schema": body}}},
            "responses": {
                "200": _json(result, "done: the result, audited"),
                "202": _json(result, "still running after 10 s: result is null"),
                "400": _error("the body is invalid"),
                **_AUTH_ERRORS,
                "404": _error("no such backup or name"),
                "409": _error("the same work is running"),
                "413": _error("the body is too large"),
                "500": _error("done, but the audit log could not be written"),
            },
        }
    }


def backup_paths(admin: str, read: Any) -> dict[str, Any]:
    """The paths of the backup routes; ``read`` builds a read operation as the document does."""

    def reading(summary: str, schema: dict[str, Any], params: list[Any]) -> dict[str, Any]:
        op: dict[str, Any] = read(summary, _json(schema), params or None)
        op["get"]["tags"] = ["backups"]
        if any(p["in"] == "path" for p in params):
            op["get"]["responses"]["404"] = _error("no such backup or name")
        return op

    root = f"{admin}/backups"
    return {
        root: reading(
            "Per backup name: newest success and failure, sizes over time, newest drill (RTO, "
            "RPO), schedules",
            LIST,
            [_query("points", "at most this many [time, size] points per name (200)", 1000)],
        ),
        f"{root}/{{id}}": reading("One backup, its chain and its last verification", SHOW, [_ID]),
        f"{root}/{{name}}/drills": reading(
            "A name's drills, newest first",
            HISTORY,
            [_NAME, _query("limit", "drills to return (default 50)", 500)],
        ),
        f"{root}/{{id}}/verify": _mutation(
            "Re-hash every artifact of a backup (deep: restore into scratch and check it)",
            VERIFY_BODY,
            VERIFIED,
            _ID,
        ),
        f"{root}/{{name}}/drill": _mutation(
            "Restore drill: the newest backup of a name into scratch, validated, RTO and RPO",
            DRILL_BODY,
            DRILLED,
            _NAME,
        ),
    }
