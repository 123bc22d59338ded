"""The flag routes match the OpenAPI document (schemathesis, with a flag store attached)."""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.checks import positive_data_acceptance
from starlette.applications import Starlette

from buttress import Registry
from buttress.degrade.flags import Flag, FlagStore
from tests.openapi_support import (
    close_after_module,
    conformance,
    conformance_app,
    openapi_schema,
    routes,
)


def _build_app() -> Starlette:
    """An ops app whose registry has a flag store holding one flag, ``0``."""
    flags = FlagStore("memory://", sync_interval=None)
    flags.create(Flag("0", enabled=True))
    registry = Registry()
    registry.attach("flags", flags, "default")
    return conformance_app(registry)


APP = _build_app()
schema = openapi_schema(APP, "/flags")
_close_app = close_after_module(APP, "flags")


def test_every_flag_route_is_documented() -> None:
    """The document lists each flag route with the methods it serves."""
    documented, served = routes(schema, APP, "/flags")
    assert served == documented
    assert len(served) == 10


@schema.parametrize()
@conformance(max_examples=6)
def test_flag_routes_conform(case: schemathesis.Case[Any]) -> None:
    """Generated requests get documented statuses, media types and bodies. (A schema-valid
    flag may still break a rule JSON Schema cannot say, such as unique variant names or
    weights adding up to more than 0: its 400 is documented, so acceptance is not checked.)"""
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
