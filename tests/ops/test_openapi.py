"""The OpenAPI document: valid OpenAPI 3.1, and the app matches it (schemathesis)."""

from __future__ import annotations

from typing import Any

import schemathesis

from buttress import Registry
from buttress.health import HealthRegistry
from buttress.ops import create_app
from buttress.ops._openapi import openapi_document
from tests.openapi_support import close_after_module, conformance, openapi_schema, routes

from .conftest import OPERATOR, TOKENS


def _build_app() -> Any:
    """An ops app with breakers, a pipeline and a health check."""
    registry = Registry()
    registry.breaker("db")
    registry.breaker("payments", minimum_calls=2, window=2)
    registry.pipeline("api", registry.timeout("t", 5.0), "db")
    health = HealthRegistry()

    @health.check(component_type="datastore")
    async def store() -> bool:
        return True

    # A high failure limit: schemathesis sends bad tokens on purpose, to see them refused.
    return create_app(
        registry, health=health, tokens=TOKENS, state_dir=":memory:", auth_failures=1_000_000
    )


OPS_APP = _build_app()
schema = openapi_schema(OPS_APP, token=OPERATOR)
_close_app = close_after_module(OPS_APP)


def test_document_is_valid_openapi_3_1() -> None:
    """The served document validates against the OpenAPI 3.1 meta-schema."""
    schema.validate()
    assert schema.raw_schema["openapi"] == "3.1.0"
    public = openapi_document(public_reads=True, metrics=True)
    assert public["paths"]["/admin/reliability/audit"]["get"]["security"] == [
        {"bearerAuth": []},
        {},
    ]
    assert "/metrics" in public["paths"]


def test_document_lists_every_route() -> None:
    """Every route of the app is documented, with the methods it accepts."""
    documented, served = routes(schema, OPS_APP)
    assert served == documented


@schema.parametrize()
@conformance(max_examples=4)
def test_api_conforms_to_its_document(case: schemathesis.Case[Any]) -> None:
    """Generated requests (valid and invalid) get documented statuses, media types and bodies."""
    case.call_and_validate()
