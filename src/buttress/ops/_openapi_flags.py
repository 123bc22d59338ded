"""The OpenAPI description of the feature-flag routes (``_routes_flags``), merged into the
app's document by ``openapi_document``."""

from __future__ import annotations

from typing import Any

from buttress.degrade import DegradationLevel
from buttress.ops._openapi import _AUTH_ERRORS, JSON, _error, _obj, _query

__all__ = ["flag_paths"]

_STR = {"type": "string"}
_NAME_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"}
_ATTRIBUTE = {"type": "string", "minLength": 1, "maxLength": 128}
_BOOL = {"type": "boolean"}
_PERCENT = {"type": "integer", "minimum": 0, "maximum": 100}
_LEVELS = [level.label for level in DegradationLevel if level is not DegradationLevel.NORMAL]

RULE_FIELDS = _obj(
    {
        "attribute": _ATTRIBUTE,
        "op": {"type": "string", "enum": ["in", "not_in", "equals"]},
        "values": {
            "anyOf": [
                {"type": ["string", "integer"]},
                {"type": "array", "items": {"type": ["string", "integer"]}, "minItems": 1},
            ]
        },
        "enabled": _BOOL,
        "rollout": {"type": ["integer", "null"], "minimum": 0, "maximum": 100},
        "variant": {"oneOf": [_NAME_SCHEMA, {"type": "null"}]},
    },
    required=["attribute", "values"],
)
RULE = {**RULE_FIELDS, "additionalProperties": False}
VARIANT = {
    **_obj(
        {"name": _NAME_SCHEMA, "weight": {"type": "integer", "minimum": 0}, "value": {}},
        required=["name"],
    ),
    "additionalProperties": False,
}
_FIELDS: dict[str, Any] = {
    "enabled": _BOOL,
    "description": {"type": "string", "maxLength": 1000},
    "rollout": _PERCENT,
    "stickiness": _ATTRIBUTE,
    "group": {"type": ["string", "null"], "minLength": 1},
    "rules": {"type": "array", "items": RULE},
    "variants": {"type": "array", "items": VARIANT},
    "off_at": {"enum": [*_LEVELS, None]},
    "requires": {"anyOf": [_STR, {"type": "array", "items": _STR}]},
    "killed": _BOOL,
}
FLAG = _obj({"name": _STR, "kind": {"type": "string", "enum": ["boolean", "variant"]}, **_FIELDS})
FLAG_VIEW = {
    "allOf": [
        FLAG,
        _obj(
            {
                "status": {
                    "type": "string",
                    "enum": ["on", "partial", "off", "suspended", "killed"],
                },
                "cause": {"type": ["string", "null"]},
            }
        ),
    ]
}
_REASON = {"reason": {"type": ["string", "null"], "maxLength": 500}}
CREATE = {
    **_obj({"name": _NAME_SCHEMA, **_FIELDS, **_REASON}, required=["name"]),
    "additionalProperties": False,
}
PATCH = {**_obj({**_FIELDS, **_REASON}, required=[]), "additionalProperties": False}
ACTION = {**_obj(_REASON, required=[]), "additionalProperties": False}
_NULLABLE_FLAG = {"oneOf": [FLAG, {"type": "null"}]}
RESULT = _obj(
    {
        "name": _STR,
        "action": _STR,
        "before": _NULLABLE_FLAG,
        "after": _NULLABLE_FLAG,
        "status": {"type": ["string", "null"]},
        "change_id": {"type": ["integer", "null"]},
        "audit_id": {"type": "integer"},
    }
)
CHANGE = _obj(
    {
        "id": {"type": "integer"},
        "time": _STR,
        "actor": _STR,
        "action": _STR,
        "flag": _STR,
        "before": _NULLABLE_FLAG,
        "after": _NULLABLE_FLAG,
        "reason": {"type": ["string", "null"]},
    }
)
LIST = _obj(
    {
        "namespace": _STR,
        "store": _STR,
        "version": {"type": "integer"},
        "degraded": _BOOL,
        "flags": {"type": "array", "items": FLAG_VIEW},
    }
)
HISTORY = _obj(
    {"changes": {"type": "array", "items": CHANGE}, "next_before": {"type": ["integer", "null"]}}
)
_NAME = {"name": "name", "in": "path", "required": True, "schema": _STR}
_UNAVAILABLE = "no flag store is attached to this server, or it is unreachable"


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _mutation(summary: str, body: dict[str, Any], *, created: bool = False) -> dict[str, Any]:
    responses = {
        "201" if created else "200": _json(RESULT, "the change, audited"),
        "400": _error("a field is invalid (the detail names it)"),
        **_AUTH_ERRORS,
        "404": _error("no flag has this name"),
        "413": _error("the body is too large"),
        "500": _error("applied, but the audit log could not be written"),
        "503": _error(_UNAVAILABLE),
    }
    if created:
        responses["409"] = _error("a flag has this name")
    return {
        "summary": summary,
        "tags": ["flags"],
        "security": [{"bearerAuth": []}],
        "requestBody": {"required": created, "content": {JSON: {"schema": body}}},
        "responses": responses,
    }


def flag_paths(admin: str, read: Any) -> dict[str, Any]:
    """The paths of the flag routes; ``read`` builds a read operation as the document does."""

    def reading(summary: str, schema: dict[str, Any], params: list[Any]) -> dict[str, Any]:
        op: dict[str, Any] = read(summary, _json(schema), params or None)["get"]
        op["tags"] = ["flags"]
        op["responses"]["404"] = _error("no flag has this name")
        op["responses"]["503"] = _error(_UNAVAILABLE)
        return op

    history = reading(
        "A flag's audited changes, newest first",
        HISTORY,
        [
            _NAME,
            _query("limit", "changes per page (default 50)", 500),
            _query("before", "only changes with a smaller id (from next_before)", 2**62),
        ],
    )
    one = {
        "get": reading("One flag and its status", FLAG_VIEW, [_NAME]),
        "patch": {**_mutation("Change fields of a flag", PATCH), "parameters": [_NAME]},
        "delete": {**_mutation("Delete a flag", ACTION), "parameters": [_NAME]},
    }
    paths: dict[str, Any] = {
        f"{admin}/flags": {
            "get": reading("Every feature flag and its status", LIST, []),
            "post": _mutation("Create a feature flag", CREATE, created=True),
        },
        f"{admin}/flags/{{name}}": one,
        f"{admin}/flags/{{name}}/history": {"get": history},
    }
    for action, what in (
        ("enable", "Switch a flag on"),
        ("disable", "Switch a flag off"),
        ("kill", "Kill switch: a flag off for everyone until revived"),
        ("revive", "Release a flag's kill switch"),
    ):
        paths[f"{admin}/flags/{{name}}/{action}"] = {
            "post": {**_mutation(what, ACTION), "parameters": [_NAME]}
        }
    return paths
