"""The OpenAPI description of ``GET /admin/reliability/limits`` (``_routes_limits``), merged
into the app's document by ``openapi_document``."""

from __future__ import annotations

from typing import Any

__all__ = ["limit_paths"]

_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_COUNT = {"type": "integer", "minimum": 0}
_SECONDS = {"type": ["number", "null"], "minimum": 0}
_OPTIONS = {"type": "object", "description": "the options it was built with"}

LIMITER = {
    "type": "object",
    "properties": {
        "name": _STR,
        "algorithm": {
            "type": "string",
            "enum": [
                "token_bucket",
                "leaky_bucket",
                "gcra",
                "fixed_window",
                "sliding_window_log",
                "sliding_window_counter",
            ],
        },
        "parameters": {
            "type": "object",
            "description": "rate (per second) and burst or capacity; or limit and window (s)",
            "additionalProperties": {"type": "number"},
        },
        "max_wait": {"type": "number", "minimum": 0},
        "keyed": {**_BOOL, "description": "one quota per key (client); remaining is then null"},
        "store": {"type": "string", "enum": ["memory", "fleet"]},
        "lease": {
            "type": "number",
            "description": "fleet lease mode's largest block, as a fraction of the limit; 0: off",
        },
        "degraded": {**_BOOL, "description": "the fleet store is unreachable: deciding locally"},
        "allowed": _COUNT,
        "refused": _COUNT,
        "keys": {**_COUNT, "description": "keys with state (idle keys expire)"},
        "waiting": _COUNT,
        "limit": _COUNT,
        "remaining": {"type": ["integer", "null"], "minimum": 0},
        "retry_after": {**_SECONDS, "description": "null: never (a unit exceeds the capacity)"},
        "reset_after": _SECONDS,
        "error": {**_STR, "description": "why the fleet store cannot be used (URL masked)"},
    },
    "required": ["name", "algorithm", "parameters", "keyed", "store", "allowed", "refused"],
}
_SHEDDER_COMMON = {
    "name": _STR,
    "policy": _STR,
    "options": _OPTIONS,
    "rejected": _COUNT,
    "shedding": _BOOL,
}
CONCURRENCY = {
    "type": "object",
    "properties": {
        **_SHEDDER_COMMON,
        "algorithm": {"type": "string", "enum": ["fixed", "aimd", "gradient2"]},
        "in_flight": _COUNT,
        "limit": _COUNT,
        "min_limit": _COUNT,
        "max_limit": _COUNT,
        "samples": _COUNT,
        "drops": _COUNT,
        "last_rtt": _SECONDS,
        "long_rtt": _SECONDS,
    },
    "required": ["name", "policy", "algorithm", "in_flight", "limit", "rejected", "shedding"],
}
THROTTLE = {
    "type": "object",
    "properties": {
        **_SHEDDER_COMMON,
        "requests": _COUNT,
        "accepts": _COUNT,
        "probability": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["name", "policy", "requests", "accepts", "probability", "rejected"],
}
QUEUE = {
    "type": "object",
    "properties": {
        "name": _STR,
        "policy": _STR,
        "options": _OPTIONS,
        "depth": _COUNT,
        "depth_by_priority": {
            "type": "array",
            "items": _COUNT,
            "description": "items waiting per priority, highest first",
        },
        "oldest_age": _SECONDS,
        "max_size": _COUNT,
        "workers": _COUNT,
        "busy": _COUNT,
        "min_workers": _COUNT,
        "max_workers": _COUNT,
        **dict.fromkeys(("submitted", "processed", "failed", "expired"), _COUNT),
        "refused": _COUNT,
        "evicted": _COUNT,
        "shedding": _BOOL,
        "closed": _BOOL,
    },
    "required": ["name", "depth", "oldest_age", "max_size", "workers", "busy", "shedding"],
}
LIMITS = {
    "type": "object",
    "properties": {
        "limiters": {"type": "array", "items": LIMITER},
        "concurrency": {"type": "array", "items": CONCURRENCY},
        "throttles": {"type": "array", "items": THROTTLE},
        "queues": {"type": "array", "items": QUEUE},
    },
    "required": ["limiters", "concurrency", "throttles", "queues"],
}


def limit_paths(admin: str, read: Any) -> dict[str, Any]:
    """The OpenAPI path of the route (``read`` builds an admin read operation)."""
    ok = {"description": "OK", "content": {"application/json": {"schema": LIMITS}}}
    summary = "Rate limiters, concurrency limiters, throttles and work queues with their state"
    return {admin + "/limits": read(summary, ok)}
