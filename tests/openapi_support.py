"""The ops app against its OpenAPI document, for the conformance tests of each area.

A test module builds its app and ``schemathesis`` schema at import, as ``@schema.parametrize()``
needs them then (schemathesis' lazy fixture loader does not support pytest 9 yet), and closes the
app with ``close_after_module``::

    APP = conformance_app(registry, dlq=dlq)
    schema = openapi_schema(APP, "dlq")
    _close_app = close_after_module(APP, "dlq")

    @schema.parametrize()
    @conformance(max_examples=6)
    def test_dlq_routes_conform(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from starlette.applications import Starlette
from starlette.routing import Route

from buttress import Registry
from buttress.health import HealthRegistry
from buttress.ops import create_app, generate_token

__all__ = [
    "DOCUMENT",
    "OPERATOR",
    "close_after_module",
    "conformance",
    "conformance_app",
    "openapi_schema",
    "routes",
]

OPERATOR, OPERATOR_SHA = generate_token()
"""The token of ``conformance_app``'s operator, ``alice``, and its hash."""

DOCUMENT = "/admin/openapi.json"
"""Where the ops app serves its document (which does not list itself)."""


def conformance_app(registry: Registry, **options: Any) -> Starlette:
    """An ops app over ``registry``: no health checks, no scheduler, state in memory, one
    operator holding ``OPERATOR``; ``options`` go to ``create_app`` and win over these.

    Its failure limit is high: schemathesis sends bad tokens on purpose, to see them refused.
    """
    defaults: dict[str, Any] = {
        "health": HealthRegistry(),
        "tokens": [("alice", "operator", OPERATOR_SHA)],
        "state_dir": ":memory:",
        "scheduler": None,
        "auth_failures": 1_000_000,
    }
    return create_app(registry, **{**defaults, **options})


def openapi_schema(
    app: Starlette, path_regex: str | None = None, *, token: str = OPERATOR
) -> schemathesis.BaseSchema:
    """The app's document as a schemathesis schema, only the paths matching ``path_regex``.

    ``token`` goes through schemathesis' auth configuration, so that it knows which requests
    carry credentials (and checks that the API refuses those that do not).
    """
    config = schemathesis.Config.from_dict({"auth": {"openapi": {"bearerAuth": {"bearer": token}}}})
    schema = schemathesis.openapi.from_asgi(DOCUMENT, app, config=config)
    return schema if path_regex is None else schema.include(path_regex=path_regex)


def routes(
    schema: schemathesis.BaseSchema, app: Starlette, part: str = ""
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """The (path, METHOD) pairs whose path holds ``part``: those the document lists, and those
    the app serves (HEAD and the document itself left out)."""
    documented = {
        (path, method.upper())
        for path, item in schema.raw_schema["paths"].items()
        for method in item
        if part in path
    }
    served = {
        (route.path, method)
        for route in app.routes
        if isinstance(route, Route)  # only routes have methods (no mounts, no websockets)
        for method in route.methods or ()
        if method != "HEAD" and part in route.path and route.path != DOCUMENT
    }
    return documented, served


def conformance(max_examples: int) -> settings:
    """Hypothesis settings for a conformance test: ``max_examples`` per operation, judged on
    the answers only (no deadline, no health check)."""
    return settings(
        max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck)
    )


def _close(thing: Any) -> None:
    thing.close()


def close_after_module(
    app: Starlette,
    kind: str | None = None,
    close: Callable[[Any], object] = _close,
    then: Callable[[], object] | None = None,
) -> Any:
    """A module-scoped autouse fixture (assign it to a name in the test module) that, after the
    module's tests, closes ``app`` (it stops listening to events), then each of its registry's
    objects of ``kind`` with ``close``, then calls ``then``."""

    @pytest.fixture(scope="module", autouse=True)
    def closing() -> Iterator[None]:
        yield
        app.state.ops.close()
        for thing in app.state.ops.registry.of_kind(kind) if kind is not None else ():
            close(thing)
        if then is not None:
            then()

    return closing
