"""``HealthReport``: what one run of the registry found, and its IETF ``application/health+json``
rendering (draft-inadarei-api-health-check)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from buttress._redact import MASK, is_secret_key, redact
from buttress.health._model import Check, CheckResult, Status

__all__ = ["CONTENT_TYPE", "CheckOutcome", "HealthReport", "rfc3339"]

CONTENT_TYPE = "application/health+json"
"""The media type of ``HealthReport.to_dict()`` rendered as JSON."""


class CheckOutcome(NamedTuple):
    """One check in a report: the ``check``, its ``result``, the result's ``age`` in seconds (None
    when the check never ran) and whether it is ``stale`` (older than the check's ``ttl``, served
    while a refresh runs in the background)."""

    check: Check
    result: CheckResult
    age: float | None
    stale: bool

    @property
    def status(self) -> Status:
        """The result's status."""
        return self.result.status


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The outcome of ``HealthRegistry.run``: the overall ``status`` (PASS, WARN or FAIL), the
    ``group`` that ran (None for every check) and ``checks``, check name -> ``CheckOutcome``.

    The overall status is the worst of the critical checks; a non-critical check that warns or
    fails gives at most WARN; a check not run yet (UNKNOWN) counts as WARN; no checks is PASS.
    """

    status: Status
    group: str | None
    checks: Mapping[str, CheckOutcome]

    @property
    def http_status(self) -> int:
        """200 for pass and warn, 503 for fail."""
        return 503 if self.status is Status.FAIL else 200

    @property
    def ok(self) -> bool:
        """Whether the HTTP status is 200 (pass or warn)."""
        return self.status is not Status.FAIL

    def to_dict(
        self,
        *,
        service_id: str | None = None,
        description: str | None = None,
        verbose: bool = True,
    ) -> dict[str, Any]:
        """The IETF ``application/health+json`` document: ``status``, optional ``serviceId`` and
        ``description``, and ``checks`` keyed ``name:measurement``. Each check's ``details`` are
        included (redacted) under ``"details"`` only when ``verbose`` (default True)."""
        doc: dict[str, Any] = {"status": self.status.ietf}
        if service_id is not None:
            doc["serviceId"] = service_id
        if description is not None:
            doc["description"] = description
        checks: dict[str, list[dict[str, Any]]] = {}
        for outcome in self.checks.values():
            checks.setdefault(outcome.check.key, []).append(_render(outcome, verbose))
        doc["checks"] = checks
        return doc

    def summary(self) -> str:
        """One line for humans, e.g. ``warn (readiness): 3 checks; db fail: ConnectionError``."""
        where = f" ({self.group})" if self.group else ""
        head = f"{self.status.ietf}{where}: {len(self.checks)} check"
        head += "" if len(self.checks) == 1 else "s"
        problems = [
            _problem(name, outcome)
            for name, outcome in self.checks.items()
            if outcome.result.status is not Status.PASS
        ]
        if not problems:
            return f"{head}, all passing" if self.checks else head
        return f"{head}; " + "; ".join(problems)

    def __str__(self) -> str:
        return self.summary()


def _problem(name: str, outcome: CheckOutcome) -> str:
    text = f"{name} {outcome.result.status.value}"
    if not outcome.check.critical:
        text += " (non-critical)"
    if outcome.result.output:
        text += f": {outcome.result.output}"
    return text


def rfc3339(timestamp: float) -> str:
    """``timestamp`` (seconds since the epoch) as RFC 3339 UTC with milliseconds.

    >>> rfc3339(1_700_000_000.25)
    '2023-11-14T22:13:20.250Z'
    """
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _render(outcome: CheckOutcome, verbose: bool) -> dict[str, Any]:
    check, result = outcome.check, outcome.result
    item: dict[str, Any] = {"componentId": check.name, "componentType": check.component_type}
    if result.observed_value is not None:
        item["observedValue"] = result.observed_value
    if result.observed_unit is not None:
        item["observedUnit"] = result.observed_unit
    item["status"] = result.status.ietf
    if result.time > 0:
        item["time"] = rfc3339(result.time)
    if result.output:
        item["output"] = result.output
    if verbose and result.details:
        item["details"] = _jsonable(result.details)
    return item


def _jsonable(value: object) -> Any:
    """Plain JSON data from ``value``; strings are redacted, unknown objects become strings."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {
            str(key): MASK if is_secret_key(str(key)) else _jsonable(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    if isinstance(value, Status):
        return value.ietf
    return redact(str(value))
