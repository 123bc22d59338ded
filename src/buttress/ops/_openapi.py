"""The OpenAPI 3.1 document of the ops app (``GET /admin/openapi.json``), written by hand.

It describes what the routes do, including the auth in force: with ``public_reads`` the read
operations accept no token. ``servers`` is the mount point the request came through, so the
document is right when the app is mounted (``app.mount("/ops", ...)``).
"""

from __future__ import annotations

from typing import Any

from buttress.breaker import BreakerState

__all__ = ["openapi_document"]

JSON = "application/json"
HEALTH = "application/health+json"
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_STR = {"type": "string"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Any], *, required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    schema["required"] = list(properties) if required is None else required
    return schema


_SNAPSHOT_INTS = [
    "window_calls",
    "window_failures",
    "window_slow",
    "calls",
    "successes",
    "failures",
    "slow",
    "rejected",
    "ignored",
    "openings",
]

SCHEMAS: dict[str, Any] = {
    "Error": _obj(
        {"error": _STR, "detail": _STR, "retry_after": _INT}, required=["error", "detail"]
    ),
    "BreakerSnapshot": _obj(
        {
            "name": _STR,
            "state": {"type": "string", "enum": [s.value for s in BreakerState]},
            "since": _NUM,
            "retry_after": {"type": ["number", "null"]},
            "failure_rate": _NUM,
            "slow_rate": _NUM,
            **dict.fromkeys(_SNAPSHOT_INTS, _INT),
        }
    ),
    "BreakerList": _obj(
        {
            "circuit_breakers": {
                "type": "array",
                "items": {
                    "allOf": [
                        _ref("BreakerSnapshot"),
                        _obj({"options": {"type": "object"}}),
                    ]
                },
            }
        }
    ),
    "BreakerAction": _obj(
        {
            "name": _STR,
            "action": {"type": "string", "enum": ["reset", "open", "disable"]},
            "before": _ref("BreakerSnapshot"),
            "after": _ref("BreakerSnapshot"),
            "audit_id": _INT,
        }
    ),
    "ActionRequest": {
        "type": "object",
        "properties": {"reason": {"type": ["string", "null"], "maxLength": 500}},
        "additionalProperties": False,
    },
    "PipelineList": _obj({"pipelines": {"type": "array", "items": {"type": "object"}}}),
    "HealthCheck": _obj(
        {
            "componentId": _STR,
            "componentType": _STR,
            "status": {"type": "string", "enum": ["pass", "warn", "fail"]},
            "observedValue": {},
            "observedUnit": _STR,
            "time": _STR,
            "output": _STR,
            "details": {"type": "object"},
        },
        required=["status"],
    ),
    "Health": _obj(
        {
            "status": {"type": "string", "enum": ["pass", "warn", "fail"]},
            "output": _STR,
            "checks": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": _ref("HealthCheck")},
            },
        },
        required=["status", "checks"],
    ),
    "HealthSummary": _obj(
        {
            "status": {"type": "string", "enum": ["pass", "warn", "fail"]},
            "counts": _obj({"pass": _INT, "warn": _INT, "fail": _INT}),
        }
    ),
    "Report": _obj(
        {
            "generated_at": _STR,
            "period": _obj({"start": _STR, "end": _STR, "seconds": _NUM}),
            "summary": {"type": "object"},
            "checks": {"type": "array", "items": {"type": "object"}},
            "breakers": {"type": "array", "items": {"type": "object"}},
            "retries": {"type": "array", "items": {"type": "object"}},
            "rejections": {"type": "array", "items": {"type": "object"}},
            "fallbacks": {"type": "array", "items": {"type": "object"}},
            "timeouts": {"type": "array", "items": {"type": "object"}},
        }
    ),
    "AuditEntry": _obj(
        {
            "id": _INT,
            "time": _STR,
            "actor": _STR,
            "action": _STR,
            "target": _STR,
            "before": {},
            "after": {},
            "client": {"type": ["string", "null"]},
            "reason": {"type": ["string", "null"]},
        }
    ),
    "AuditPage": _obj(
        {
            "entries": {"type": "array", "items": _ref("AuditEntry")},
            "next_before": {"type": ["integer", "null"]},
        }
    ),
    "EventList": _obj(
        {
            "events": {
                "type": "array",
                "items": _obj(
                    {"kind": _STR, "source": _STR, "time": _NUM, "seq": _INT},
                ),
            }
        }
    ),
}


_JOB_RUN = _obj(
    {
        "job": _STR,
        "started": _NUM,
        "duration": _NUM,
        "outcome": {"type": "string", "enum": ["ok", "error", "skipped"]},
        "error": _STR,
    }
)
SCHEMAS.update(
    {
        "JobRun": _JOB_RUN,
        "Job": _obj(
            {
                "name": _STR,
                "interval": _NUM,
                "jitter": _NUM,
                "runs": _INT,
                "failures": _INT,
                "skipped": _INT,
                "running": {"type": "boolean"},
                "next_run": {"type": ["number", "null"]},
                "last": {"oneOf": [_ref("JobRun"), {"type": "null"}]},
            }
        ),
        "JobList": _obj({"jobs": {"type": "array", "items": _ref("Job")}}),
        "JobRunPage": _obj(
            {
                "runs": {
                    "type": "array",
                    "items": {"allOf": [_ref("JobRun"), _obj({"id": _INT})]},
                },
                "next_before": {"type": ["integer", "null"]},
            }
        ),
        "JobRunResult": _obj(
            {
                "job": _ref("Job"),
                "run": {"oneOf": [_ref("JobRun"), {"type": "null"}]},
                "audit_id": _INT,
            }
        ),
    }
)


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": _ref("Error")}},
    }
    if headers:
        response["headers"] = headers
    return response


_RETRY_AFTER = {"Retry-After": {"schema": _STR, "description": "seconds to wait"}}
_AUTH_ERRORS = {
    "401": _error(
        "missing or invalid bearer token",
        {"WWW-Authenticate": {"schema": _STR, "required": True}},
    ),
    "403": _error("the token's role is too low"),
    "429": _error("too many failed authentications from this client", _RETRY_AFTER),
}


def _ok(schema: str, media: str = JSON, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": _ref(schema)}}}


def _query(name: str, description: str, maximum: int) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "integer", "minimum": 1, "maximum": maximum},
    }


def _health(summary: str, schema: str = "Health", fails: bool = True) -> dict[str, Any]:
    responses = {"200": _ok(schema, HEALTH, "pass or warn")}
    if fails:
        responses["503"] = _ok(schema, HEALTH, "fail")
    return {"get": {"summary": summary, "tags": ["health"], "security": [], "responses": responses}}


def _job_paths(admin: str, read: Any, mutation: Any) -> dict[str, Any]:
    """The scheduled jobs: list, stored runs, run now."""
    name = {"name": "name", "in": "path", "required": True, "schema": _STR}
    runs = read(
        "A scheduled job's stored runs, newest first",
        _ok("JobRunPage"),
        [
            name,
            _query("limit", "runs per page (default 50)", 500),
            _query("before", "only runs with a smaller id (from next_before)", 2**62),
        ],
    )
    runs["get"]["responses"]["404"] = _error("no scheduled job has this name")
    run = mutation("Run a scheduled job now", _ok("JobRunResult"), breaker=False)
    op = run["post"]
    op["parameters"] = [name]
    op["responses"]["202"] = _ok("JobRunResult", description="still running (run is null)")
    op["responses"]["404"] = _error("no scheduled job has this name")
    op["responses"]["503"] = _error("the scheduler stopped before the run ended")
    return {
        f"{admin}/jobs": read("Scheduled jobs and their last runs", _ok("JobList")),
        f"{admin}/jobs/{{name}}/runs": runs,
        f"{admin}/jobs/{{name}}/run": run,
    }


def _dashboard_paths(admin: str, read: Any) -> dict[str, Any]:
    """The dashboard: its page and files (public, no data in them) and its live stream."""
    from buttress.ops._dashboard import ASSETS

    def public(summary: str, media: str) -> Any:
        content = {media.partition(";")[0]: {"schema": _STR}}
        responses = {"200": {"description": "the file", "content": content}}
        return {
            "get": {
                "summary": summary,
                "tags": ["dashboard"],
                "security": [],
                "responses": responses,
            }
        }

    # One event of the stream (OpenAPI 3.1: the schema of a text/event-stream is per event).
    event = _obj(
        {
            "event": {"type": "string", "enum": ["snapshot", "events"]},
            "data": {"type": "string", "contentMediaType": JSON},
            "id": _STR,
            "retry": _INT,
        },
        required=["event", "data"],
    )
    stream = read(
        "Live dashboard data as server-sent events: `snapshot` (health and breakers, sent when "
        "it changes, checked every second) and `events` (new ops events; `id` is the last "
        "seq; the first has `reset: true` unless `after` resumed). The stream lasts only for "
        "a client whose `Accept` names `text/event-stream`; others, and `once=1`, get the "
        "current state and the stream ends.",
        {"description": "an event stream", "content": {"text/event-stream": {"schema": event}}},
        [
            {
                "name": "once",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "enum": [0, 1]},
            },
            _query("after", "only events with a larger seq (else the recent ones)", 2**62),
        ],
    )
    stream["get"]["tags"] = ["dashboard"]
    stream["get"]["responses"]["503"] = _error("too many open streams", _RETRY_AFTER)
    paths = {"/": public("The dashboard page", "text/html")}
    for name, media in ASSETS.items():
        paths[f"/dashboard/{name}"] = public("A file of the dashboard page", media)
    paths[f"{admin}/stream"] = stream
    return paths


def openapi_document(
    *,
    public_reads: bool,
    server: str | None = None,
    metrics: bool = False,
    flags: bool = False,
    degradation: bool = False,
    dlq: bool = False,
    backups: bool = False,
) -> dict[str, Any]:
    """The document; ``server`` is the URL prefix the app is mounted at (None when at the root),
    ``metrics`` whether ``/metrics`` is served, ``flags`` whether the feature-flag routes are,
    ``degradation`` whether the degradation routes are, ``dlq`` whether the DLQ routes are,
    ``backups`` whether the backup routes are."""
    read_security: list[dict[str, list[str]]] = [{"bearerAuth": []}]
    if public_reads:
        read_security = [{"bearerAuth": []}, {}]

    def read(summary: str, ok: dict[str, Any], params: list[Any] | None = None) -> dict[str, Any]:
        op: dict[str, Any] = {
            "summary": summary,
            "tags": ["admin"],
            "security": read_security,
            "responses": {"200": ok, **_AUTH_ERRORS, "400": _error("invalid query parameter")},
        }
        if params:
            op["parameters"] = params
        return {"get": op}

    def mutation(summary: str, ok: dict[str, Any], *, breaker: bool) -> dict[str, Any]:
        responses = {
            "200": ok,
            "400": _error("the body is not a valid ActionRequest"),
            **_AUTH_ERRORS,
            "413": _error("the body is too large"),
            "500": _error("applied, but the audit log could not be written"),
        }
        op: dict[str, Any] = {
            "summary": summary,
            "tags": ["admin"],
            "security": [{"bearerAuth": []}],
            "requestBody": {
                "required": False,
                "content": {JSON: {"schema": _ref("ActionRequest")}},
            },
            "responses": responses,
        }
        if breaker:
            responses["404"] = _error("no breaker has this name")
            op["parameters"] = [{"name": "name", "in": "path", "required": True, "schema": _STR}]
        return {"post": op}

    admin = "/admin/reliability"
    paths: dict[str, Any] = {
        "/health/": _health("Overall status and counts of checks", "HealthSummary"),
        "/health/live": _health("Liveness probe"),
        "/health/ready": _health("Readiness probe (cached results)"),
        "/health/startup": _health("Startup probe (cached results)"),
        "/health/detailed": _health("Every check with details (cached results)"),
        "/health/circuit-breakers": _health("Breakers as health checks", fails=False),
        f"{admin}/circuit-breakers": read("List circuit breakers", _ok("BreakerList")),
    }
    for action, what in (("reset", "Close"), ("open", "Open (trip)"), ("disable", "Disable")):
        paths[f"{admin}/circuit-breakers/{{name}}/{action}"] = mutation(
            f"{what} a circuit breaker", _ok("BreakerAction"), breaker=True
        )
    paths[f"{admin}/pipelines"] = read("Describe pipelines", _ok("PipelineList"))
    paths[f"{admin}/health/run"] = mutation(
        "Run every health check now", _ok("Health", HEALTH), breaker=False
    )
    report_ok = {
        "description": "the report",
        "content": {
            JSON: {"schema": _ref("Report")},
            "text/markdown": {"schema": _STR},
            "text/html": {"schema": _STR},
        },
    }
    fmt = {
        "name": "format",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["json", "md", "html"]},
    }
    paths[f"{admin}/reports/reliability"] = read("Reliability report", report_ok, [fmt])
    paths[f"{admin}/audit"] = read(
        "Audit log, newest first",
        _ok("AuditPage"),
        [
            _query("limit", "entries per page (default 50)", 500),
            _query("before", "only entries with a smaller id (from next_before)", 2**62),
        ],
    )
    paths[f"{admin}/events"] = read(
        "Recent events, newest first",
        _ok("EventList"),
        [
            _query("limit", "at most this many (default 100)", 500),
            _query("after", "only events with a larger seq", 2**62),
        ],
    )
    paths.update(_job_paths(admin, read, mutation))
    if flags:
        from buttress.ops._openapi_flags import flag_paths  # imports this module

        paths.update(flag_paths(admin, read))
    from buttress.ops._routes_http import http_client_paths

    paths.update(http_client_paths(admin, read))
    from buttress.ops._openapi_limits import limit_paths

    paths.update(limit_paths(admin, read))
    paths.update(_dashboard_paths(admin, read))
    if degradation:
        from buttress.ops._routes_degradation import degradation_paths

        paths.update(degradation_paths(admin, read, mutation))
    if dlq:
        from buttress.ops._openapi_dlq import dlq_paths  # imports this module

        paths.update(dlq_paths(admin, read))
    if backups:
        from buttress.ops._openapi_backups import backup_paths  # imports this module

        paths.update(backup_paths(admin, read))
    if metrics:
        paths["/metrics"] = read(
            "Prometheus exposition",
            {"description": "metrics", "content": {"text/plain": {"schema": _STR}}},
        )
        paths["/metrics"]["get"]["tags"] = ["metrics"]
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "buttress ops API",
            "version": "1",
            "description": "Health probes (public) and the reliability admin API.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
    if server:
        doc["servers"] = [{"url": server}]
    return doc
