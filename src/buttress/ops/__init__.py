"""The ops control plane: health endpoints, the admin API, the protective middleware and the
embedded state store.

``create_app(registry, ...)`` builds the Starlette app (``serve(app)`` runs it with uvicorn on
127.0.0.1); ``ReliabilityMiddleware`` applies a named pipeline to protected path prefixes of any
ASGI app. Starlette and uvicorn (the ``server`` extra) are imported only when those are used:
``generate_token``, ``StateStore`` and the report functions work without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from buttress.ops._audit import AuditEntry, AuditLog
from buttress.ops._context import OpsContext
from buttress.ops._events import EventLog
from buttress.ops._middleware import ReliabilityMiddleware, ServerErrorResponse
from buttress.ops._report import reliability_report, render_html, render_markdown
from buttress.ops._state import StateStore
from buttress.ops._tokens import Role, Token, generate_token, hash_token

if TYPE_CHECKING:
    from buttress.ops._app import create_app, make_server, serve
    from buttress.ops._http import Access, guard

__all__ = [
    "Access",
    "AuditEntry",
    "AuditLog",
    "EventLog",
    "OpsContext",
    "ReliabilityMiddleware",
    "Role",
    "ServerErrorResponse",
    "StateStore",
    "Token",
    "create_app",
    "generate_token",
    "guard",
    "hash_token",
    "make_server",
    "reliability_report",
    "render_html",
    "render_markdown",
    "serve",
]

_LAZY = {
    "Access": "_http",
    "create_app": "_app",
    "guard": "_http",
    "make_server": "_app",
    "serve": "_app",
}


def __getattr__(name: str) -> Any:
    """Import the Starlette-based names on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'buttress.ops' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"buttress.ops.{module}"), name)
    globals()[name] = value
    return value
