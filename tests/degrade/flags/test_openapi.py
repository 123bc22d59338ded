"""The flag routes match the OpenAPI document (schemathesis, with a flag store attached)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from buttress import Registry
from buttress.degrade.flags import Flag, FlagStore
from buttress.health import HealthRegistry
from buttress.ops import create_app, generate_token

OPERATOR, OPERATOR_SHA = generate_token()
CONFIG = schemathesis.Config.from_dict({"auth": {"openapi": {"bearerAuth": {"bearer": OPERATOR}}}})


def _build_app() -> Any:
    """An ops app whose registry has a flag store holding one flag, ``0``."""
    flags = FlagStore("memory://", sync_interval=None)
    flags.create(Flag("0", enabled=True))
    registry = Registry()
    registry.attach("flags", flags, "default")
    return create_app(
        registry,
        health=HealthRegistry(),
        tokens=[("alice", "operator", OPERATOR_SHA)],
        state_dir=":memory:",
        scheduler=None,
        auth_failures=1_000_000,
    )


APP = _build_app()
schema = schemathesis.openapi.from_asgi("/admin/openapi.json", APP, config=CONFIG).include(
    path_regex="/flags"
)


@pytest.fixture(scope="module", autouse=True)
def _close_app() -> Iterator[None]:
    """Close the module's app and flag store after its tests."""
    yield
    APP.state.ops.close()
    for flags in APP.state.ops.registry.of_kind("flags"):
        flags.close()


def test_every_flag_route_is_documented() -> None:
    """The document lists each flag route with the methods it serves."""
    documented = {
        (path, method.upper())
        for path, item in schema.raw_schema["paths"].items()
        for method in item
        if "/flags" in path
    }
    served = {
        (route.path, method)
        for route in APP.routes
        for method in route.methods or ()
        if method != "HEAD" and "/flags" in route.path
    }
    assert served == documented
    assert len(served) == 10


@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
def test_flag_routes_conform(case: schemathesis.Case[Any]) -> None:
    """Generated requests get documented statuses, media types and bodies. (A schema-valid
    flag may still break a rule JSON Schema cannot say, such as unique variant names or
    weights adding up to more than 0: its 400 is documented, so acceptance is not checked.)"""
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
