"""The DLQ routes match the OpenAPI document (schemathesis, with a queue holding records)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from buttress import Registry
from buttress.dlq import DeadLetterQueue, SQLiteBackend
from buttress.health import HealthRegistry
from buttress.ops import create_app, generate_token

OPERATOR, OPERATOR_SHA = generate_token()
CONFIG = schemathesis.Config.from_dict({"auth": {"openapi": {"bearerAuth": {"bearer": OPERATOR}}}})
FOLDER = Path(tempfile.mkdtemp(prefix="buttress-dlq-openapi-"))


def _build_app() -> Any:
    """An ops app given a queue with a pending, a parked and a discarded record."""
    dlq = DeadLetterQueue(SQLiteBackend(FOLDER / "dlq.db"))
    dlq.add({"n": 1}, error=ConnectionError("down"), queue="emails")
    dlq.add({"n": 2}, error=ValueError("bad"), queue="payments")
    dlq.discard(dlq.add({"n": 3}, error=ConnectionError("down")), "test")
    return create_app(
        Registry(),
        health=HealthRegistry(),
        tokens=[("alice", "operator", OPERATOR_SHA)],
        state_dir=":memory:",
        scheduler=None,
        auth_failures=1_000_000,
        dlq=dlq,
    )


APP = _build_app()
schema = schemathesis.openapi.from_asgi("/admin/openapi.json", APP, config=CONFIG).include(
    path_regex="dlq"
)


@pytest.fixture(scope="module", autouse=True)
def _close_app() -> Iterator[None]:
    """Close the module's app and queue after its tests."""
    yield
    APP.state.ops.close()
    for dlq in APP.state.ops.registry.of_kind("dlq"):
        dlq.close()


def test_every_dlq_route_is_documented() -> None:
    """The document lists each DLQ route with the methods it serves."""
    documented = {
        (path, method.upper())
        for path, item in schema.raw_schema["paths"].items()
        for method in item
        if "dlq" in path
    }
    served = {
        (route.path, method)
        for route in APP.routes
        for method in route.methods or ()
        if method != "HEAD" and "dlq" in route.path
    }
    assert served == documented
    assert len(served) == 10


@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
def test_dlq_routes_conform(case: schemathesis.Case[Any]) -> None:
    """Generated requests get documented statuses, media types and bodies. (Acceptance of
    schema-valid data is not checked: some rules span fields, as since < until in at most
    1000 buckets, or a record's status allowing an action, and those answer a documented
    400 or 409.)"""
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
