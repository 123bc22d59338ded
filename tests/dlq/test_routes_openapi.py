"""The DLQ routes match the OpenAPI document (schemathesis, with a queue holding records)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from schemathesis.checks import positive_data_acceptance
from starlette.applications import Starlette

from buttress import Registry
from buttress.dlq import DeadLetterQueue, SQLiteBackend
from tests.openapi_support import (
    close_after_module,
    conformance,
    conformance_app,
    openapi_schema,
    routes,
)

FOLDER = Path(tempfile.mkdtemp(prefix="buttress-dlq-openapi-"))


def _build_app() -> Starlette:
    """An ops app given a queue with a pending, a parked and a discarded record."""
    dlq = DeadLetterQueue(SQLiteBackend(FOLDER / "dlq.db"))
    dlq.add({"n": 1}, error=ConnectionError("down"), queue="emails")
    dlq.add({"n": 2}, error=ValueError("bad"), queue="payments")
    dlq.discard(dlq.add({"n": 3}, error=ConnectionError("down")), "test")
    return conformance_app(Registry(), dlq=dlq)


APP = _build_app()
schema = openapi_schema(APP, "dlq")
_close_app = close_after_module(APP, "dlq", then=lambda: shutil.rmtree(FOLDER, ignore_errors=True))


def test_every_dlq_route_is_documented() -> None:
    """The document lists each DLQ route with the methods it serves."""
    documented, served = routes(schema, APP, "dlq")
    assert served == documented
    assert len(served) == 10


@schema.parametrize()
@conformance(max_examples=6)
def test_dlq_routes_conform(case: schemathesis.Case[Any]) -> None:
    """Generated requests get documented statuses, media types and bodies. (Acceptance of
    schema-valid data is not checked: some rules span fields, as since < until in at most
    1000 buckets, or a record's status allowing an action, and those answer a documented
    400 or 409.)"""
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
