"""HTTP plumbing of the ops app: redacted JSON responses, JSON errors, bearer-token guards and the
request body limit."""

from __future__ import annotations

import enum
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from buttress._redact import add_secret
from buttress.ops._context import OpsContext
from buttress.ops._events import redact_tree
from buttress.ops._tokens import Role, Token, retry_after_header

__all__ = [
    "Access",
    "BodyLimitMiddleware",
    "JSONBody",
    "error",
    "guard",
    "read_reason",
    "strict_query",
]

Endpoint = Callable[[Request], Awaitable[Response]]
REALM = 'Bearer realm="buttress"'
MAX_REASON = 500


class JSONBody(Response):
    """A JSON response whose strings are redacted and whose NaN/infinities are null."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise ``content`` compactly as UTF-8 JSON."""
        text = json.dumps(
            redact_tree(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
        return text.encode("utf-8")


def error(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONBody:
    """A JSON error: ``{"error": code, "detail": detail}`` (redacted) with ``status``."""
    return JSONBody({"error": code, "detail": detail}, status, headers=dict(headers or {}))


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's HTTP errors (404, 405...) as JSON errors, keeping their headers (``Allow``)."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error(exc.status_code, code, str(exc.detail), exc.headers)


class Access(enum.Enum):
    """Who may call an endpoint."""

    PUBLIC = "public"
    """Anyone (health probes)."""
    READ = "read"
    """A viewer or operator token, or anyone when reads are public."""
    OPERATE = "operate"
    """An operator token."""


def client_address(request: Request) -> str:
    """The client's address as the server saw it (proxies are the server's business)."""
    return request.client.host if request.client is not None else "unknown"


def authorize(ctx: OpsContext, access: Access, request: Request) -> Token | Response | None:
    """The caller's token (None when anonymous is allowed), or the response refusing it."""
    header = request.headers.get("authorization")
    if header is None and access is Access.READ and ctx.public_reads:
        return None
    client = client_address(request)
    wait = ctx.limiter.retry_after(client)
    if wait is not None:
        return error(
            429,
            "too_many_failures",
            "too many failed authentications from this client; try again later",
            {"Retry-After": retry_after_header(wait)},
        )
    if header is None:
        return error(401, "unauthorized", "a bearer token is required", {"WWW-Authenticate": REALM})
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    token = None
    if scheme.lower() == "bearer" and credentials:
        token = ctx.tokens.authenticate(credentials)
    if token is None:
        ctx.limiter.fail(client)
        return error(
            401,
            "unauthorized",
            "the bearer token is not valid",
            {"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
        )
    add_secret(credentials)  # a valid token never shows in later text, whatever echoes it
    needed = Role.OPERATOR if access is Access.OPERATE else Role.VIEWER
    if token.role < needed:
        return error(
            403,
            "forbidden",
            f"this needs a token with the {needed} role",
            {"WWW-Authenticate": f'{REALM}, error="insufficient_scope"'},
        )
    return token


def guard(ctx: OpsContext, access: Access, endpoint: Endpoint) -> Endpoint:
    """``endpoint`` behind the token check for ``access``; sets ``request.state.token``."""
    if access is Access.PUBLIC:
        return endpoint

    async def guarded(request: Request) -> Response:
        outcome = authorize(ctx, access, request)
        if isinstance(outcome, Response):
            return outcome
        request.state.token = outcome
        return await endpoint(request)

    guarded.__name__ = getattr(endpoint, "__name__", "endpoint")
    guarded.__doc__ = endpoint.__doc__
    return guarded


def strict_query(endpoint: Endpoint, allowed: Iterable[str] = ()) -> Endpoint:
    """``endpoint`` answering 400 to a query parameter outside ``allowed`` (a typo such as
    ``?limt=5`` is an error, not silently ignored) or given twice."""
    names = frozenset(allowed)

    async def checked(request: Request) -> Response:
        for name in request.query_params:
            if name not in names:
                return error(400, "bad_request", f"unknown query parameter {name!r}")
            if len(request.query_params.getlist(name)) > 1:
                return error(400, "bad_request", f"query parameter {name!r} is repeated")
        return await endpoint(request)

    checked.__name__ = getattr(endpoint, "__name__", "endpoint")
    checked.__doc__ = endpoint.__doc__
    return checked


async def read_reason(request: Request) -> str | Response | None:
    """The optional ``{"reason": "..."}`` body of a mutation, or a 400 response."""
    body = await request.body()
    if not body.strip():
        return None
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return error(400, "bad_request", "the body must be JSON")
    if not isinstance(data, dict) or set(data) - {"reason"}:
        return error(400, "bad_request", 'the body must be an object like {"reason": "..."}')
    reason = data.get("reason")
    if reason is None:
        return None
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        return error(
            400, "bad_request", f"reason must be a string of at most {MAX_REASON} characters"
        )
    return reason


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Answers 413 to a request whose body is larger than ``max_bytes``: at once when
    ``Content-Length`` says so, else (a chunked or HTTP/2 body) as soon as the streamed body
    passes the limit (if the response has not started by then)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the bytes the app reads."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunked = False
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._refuse(send, 400, "bad_request", "invalid Content-Length")
                    return
                if declared > self.max_bytes:
                    await self._too_large(send)
                    return
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked and scope.get("http_version") in ("1.0", "1.1"):
            # HTTP/1 frames a body by its Content-Length, checked above, and a request with
            # neither header has none: nothing to count (probes skip the wrappers below).
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        detail = f"the request body is larger than {self.max_bytes} bytes"
        await self._refuse(send, 413, "payload_too_large", detail)

    async def _refuse(self, send: Send, status: int, code: str, detail: str) -> None:
        payload = json.dumps({"error": code, "detail": detail}).encode("utf-8")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode("ascii")),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
