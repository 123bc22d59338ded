"""HealthReport: IETF application/health+json rendering, HTTP mapping and the one-line summary."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from buttress.health import (
    CONTENT_TYPE,
    Check,
    CheckOutcome,
    CheckResult,
    HealthRegistry,
    HealthReport,
    Status,
)
from buttress.health._report import rfc3339
from buttress.testing import ManualClock

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def outcome(name: str, result: CheckResult, **fields: object) -> CheckOutcome:
    """A report entry for a check called ``name`` with ``result``."""
    return CheckOutcome(Check(name, lambda: True, **fields), result, 0.0, False)  # type: ignore[arg-type]


def report(status: Status, *outcomes: CheckOutcome) -> HealthReport:
    """A report with the given overall status and entries."""
    return HealthReport(status, "readiness", {o.check.name: o for o in outcomes})


async def test_ietf_document_keys_types_and_time() -> None:
    """A real run renders top-level status and checks keyed name:measurement with typed fields."""
    clock = ManualClock()
    registry = HealthRegistry(clock=clock)
    registry.add(
        lambda: {"status": "pass", "value": 4.2, "unit": "ms", "version": "16.2"},
        name="db",
        component_type="datastore",
        measurement="responseTime",
    )
    registry.add(lambda: CheckResult.warned("disk 91% full"), name="disk", critical=False)
    doc = (await registry.run("readiness")).to_dict(service_id="orders-api", description="Orders")
    assert json.loads(json.dumps(doc)) == doc
    assert (doc["status"], doc["serviceId"], doc["description"]) == ("warn", "orders-api", "Orders")
    assert sorted(doc["checks"]) == ["db:responseTime", "disk:status"]
    [db] = doc["checks"]["db:responseTime"]
    assert db == {
        "componentId": "db",
        "componentType": "datastore",
        "observedValue": 4.2,
        "observedUnit": "ms",
        "status": "pass",
        "time": "2023-11-14T22:13:20.000Z",
        "details": {"version": "16.2"},
    }
    [disk] = doc["checks"]["disk:status"]
    assert (disk["status"], disk["output"]) == ("warn", "disk 91% full")
    assert RFC3339_UTC.match(disk["time"])
    parsed = datetime.fromisoformat(disk["time"].replace("Z", "+00:00"))
    assert parsed == datetime.fromtimestamp(clock.time(), UTC)


def test_optional_fields_are_omitted() -> None:
    """No serviceId, description, observed value, output, time or details when there are none."""
    doc = report(Status.PASS, outcome("cache", CheckResult.passed())).to_dict()
    assert doc == {
        "status": "pass",
        "checks": {
            "cache:status": [
                {"componentId": "cache", "componentType": "component", "status": "pass"}
            ]
        },
    }


def test_unknown_renders_as_warn() -> None:
    """A check not run yet is 'warn' in the document, with its explanation."""
    unknown = CheckOutcome(
        Check("db", lambda: True), CheckResult(Status.UNKNOWN, "not run yet"), None, False
    )
    doc = report(Status.WARN, unknown).to_dict()
    [item] = doc["checks"]["db:status"]
    assert (doc["status"], item["status"], item["output"]) == ("warn", "warn", "not run yet")


def test_details_only_when_verbose_and_redacted() -> None:
    """Details appear only in verbose output, with secrets masked and values made JSON-safe."""
    result = CheckResult.passed(
        details={
            "dsn": "redis://:hunter22@cache:6379/0",
            "pool": {"size": 4},
            "ids": (1, 2),
            "s": Status.WARN,
        }
    )
    verbose = report(Status.PASS, outcome("cache", result)).to_dict()
    assert verbose["checks"]["cache:status"][0]["details"] == {
        "dsn": "redis://:***@cache:6379/0",
        "pool": {"size": 4},
        "ids": [1, 2],
        "s": "warn",
    }
    terse = report(Status.PASS, outcome("cache", result)).to_dict(verbose=False)
    assert "details" not in terse["checks"]["cache:status"][0]


def test_checks_sharing_a_key_share_the_array() -> None:
    """Two checks with the same name:measurement key render as two objects in one array."""
    first = outcome("api", CheckResult.passed())
    second = CheckOutcome(Check("api", lambda: True), CheckResult.failed("down"), 0.0, False)
    doc = HealthReport(Status.FAIL, None, {"a": first, "b": second}).to_dict()
    assert [item["status"] for item in doc["checks"]["api:status"]] == ["pass", "fail"]


@pytest.mark.parametrize(
    ("status", "http"), [(Status.PASS, 200), (Status.WARN, 200), (Status.FAIL, 503)]
)
def test_http_status_mapping(status: Status, http: int) -> None:
    """Pass and warn are 200, fail is 503."""
    assert report(status).http_status == http
    assert report(status).ok is (http == 200)


def test_summary_names_the_problems() -> None:
    """The summary gives the status, the group, the count and each check that is not passing."""
    summary = report(
        Status.FAIL,
        outcome("db", CheckResult.failed("ConnectionError: refused")),
        outcome("disk", CheckResult.warned(), critical=False),
        outcome("cache", CheckResult.passed()),
    ).summary()
    assert summary == (
        "fail (readiness): 3 checks; db fail: ConnectionError: refused; disk warn (non-critical)"
    )
    assert str(report(Status.PASS, outcome("db", CheckResult.passed()))) == (
        "pass (readiness): 1 check, all passing"
    )
    assert HealthReport(Status.PASS, None, {}).summary() == "pass: 0 checks"


def test_content_type_and_rfc3339() -> None:
    """The media type is application/health+json; times are RFC 3339 UTC."""
    assert CONTENT_TYPE == "application/health+json"
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
