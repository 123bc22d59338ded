"""Health checks: a registry of checks run in parallel with timeouts and caching, built-in
checks for datastores and the system, IETF ``application/health+json`` reports, and a monitor."""

from buttress.health._model import Check, CheckFunction, CheckResult, Status, grade, to_result
from buttress.health._monitor import (
    AlertSink,
    CallableSink,
    HealthMonitor,
    LogSink,
    WebhookSink,
)
from buttress.health._registry import HealthRegistry
from buttress.health._report import CONTENT_TYPE, CheckOutcome, HealthReport

__all__ = [
    "CONTENT_TYPE",
    "AlertSink",
    "CallableSink",
    "Check",
    "CheckFunction",
    "CheckOutcome",
    "CheckResult",
    "HealthMonitor",
    "HealthRegistry",
    "HealthReport",
    "LogSink",
    "Status",
    "WebhookSink",
    "grade",
    "to_result",
]
