"""The OpenAPI document: valid OpenAPI 3.1, and the app matches it (schemathesis)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from buttress import Registry
from buttress.health import HealthRegistry
from buttress.ops import create_app
from buttress.ops._openapi import openapi_document

from .conftest import OPERATOR, TOKENS

# The operator token through schemathesis' auth config, so that it knows which requests carry
# credentials (and checks that the API refuses those that do not).
CONFIG = schemathesis.Config.from_dict({"auth": {"openapi": {"bearerAuth": {"bearer": OPERATOR}}}})


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


# Loaded at import, as @schema.parametrize() needs it (schemathesis' lazy fixture loader does
# not support pytest 9 yet); the module fixture below closes the app after these tests.
OPS_APP = _build_app()
schema = schemathesis.openapi.from_asgi("/admin/openapi.json", OPS_APP, config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def _close_app() -> Iterator[None]:
    """Stop the module's app listening to events once its tests are done."""
    yield
    OPS_APP.state.ops.close()


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
    documented = {
        (path, method.upper())
        for path, item in schema.raw_schema["paths"].items()
        for method in item
    }
    served = {
        (route.path, method)
        for route in OPS_APP.routes
        for method in route.methods or ()
        if method != "HEAD" and route.path != "/admin/openapi.json"
    }
    assert served == documented


@schema.parametrize()
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_document(case: schemathesis.Case[Any]) -> None:
    """Generated requests (valid and invalid) get documented statuses, media types and bodies."""
    case.call_and_validate()
