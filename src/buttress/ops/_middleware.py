"""``ReliabilityMiddleware``: a named pipeline around the requests to protected path prefixes.

Pure ASGI (any framework): ``app.add_middleware(ReliabilityMiddleware, registry=registry,
routes={"/api/v1/webhooks/": "webhooks"})``. The downstream app runs inside the pipeline's
``acall``; a rejection or timeout raised *before the response starts* becomes an HTTP answer:

==============================  ======================================================
``CircuitOpenError``             503, ``Retry-After`` (whole seconds, rounded up)
``RateLimitedError``             429, ``Retry-After`` when known
other ``RejectedError``          503 (bulkhead full, load shed), ``Retry-After`` when known
``buttress.TimeoutError``        504
==============================  ======================================================

Once the response has started it is never replaced: a late error is re-raised so the server
aborts the connection (the client sees a truncated response, not a second one).

**5xx responses count as failures.** After the app has *finished* sending a response whose
status is >= ``failure_status`` (default 500), the function the pipeline runs raises
``ServerErrorResponse`` (the response is already on its way), so the breaker records a failure
with its default ``on=Exception``; the middleware then swallows it. A breaker with a narrower
``on=`` should list ``ServerErrorResponse``. Chosen over the breaker's ``on_result`` because it
needs no per-breaker configuration (``on_result`` cannot be set from ``buttress.toml``).

A request cannot be replayed (its body is consumed and its response may have started), so the
pipeline must not contain ``Retry``, ``Hedge`` or ``Fallback``: those raise ``ConfigError``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from buttress._policy import Policy
from buttress._redact import redact
from buttress.errors import (
    CircuitOpenError,
    ConfigError,
    RateLimitedError,
    RejectedError,
    TimeoutError,
)
from buttress.ops._tokens import retry_after_header
from buttress.pipeline import Pipeline
from buttress.registry import Registry

__all__ = ["ReliabilityMiddleware", "ServerErrorResponse"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _not_replayable() -> tuple[type[Policy], ...]:
    from buttress.fallback import Fallback
    from buttress.hedge import Hedge
    from buttress.retry import Retry

    return (Retry, Hedge, Fallback)


class ServerErrorResponse(Exception):
    """The app answered with a 5xx ``status``: raised inside the pipeline after the response was
    sent, so the breaker counts a failure; ``ReliabilityMiddleware`` swallows it."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"the application answered {status}")


def route_path(scope: Scope) -> str:
    """The request path below the app's mount point (``root_path`` removed)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


class ReliabilityMiddleware:
    """Runs requests whose path starts with a prefix of ``routes`` (prefix -> pipeline name in
    ``registry``; the longest prefix wins) through that pipeline. ``failure_status`` (default 500;
    None disables) is the lowest status counted as a failure. See the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        registry: Registry,
        routes: Mapping[str, str],
        failure_status: int | None = 500,
    ) -> None:
        self.app = app
        self.registry = registry
        for prefix, name in routes.items():
            if not prefix.startswith("/") or not isinstance(name, str):
                raise ConfigError(f"routes[{prefix!r}]", name, "must map '/prefix' to a name")
        self.routes = sorted(routes.items(), key=lambda item: len(item[0]), reverse=True)
        self.failure_status = failure_status
        self._pipelines: dict[str, Pipeline] = {}
        for _, name in self.routes:  # fail early for the pipelines registered already
            if any(p.name == name for p in registry.pipelines()):
                self._pipeline(name)

    def _pipeline(self, name: str) -> Pipeline:
        pipeline = self._pipelines.get(name)
        if pipeline is not None:
            return pipeline
        try:
            pipeline = self.registry.get(name, "pipeline")
        except KeyError:
            raise ConfigError(f"pipelines.{name}", name, "is not registered") from None
        assert isinstance(pipeline, Pipeline)
        refused = [type(p).__name__ for p in pipeline.policies if isinstance(p, _not_replayable())]
        if refused:
            raise ConfigError(
                f"pipelines.{name}",
                refused,
                "cannot protect HTTP requests: a request cannot be retried, hedged or replaced",
            )
        self._pipelines[name] = pipeline
        return pipeline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI call: protected HTTP requests through their pipeline, the rest as is."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        for prefix, name in self.routes:  # noqa: B007 - ``name`` is used after the loop
            if path.startswith(prefix):
                break
        else:
            await self.app(scope, receive, send)
            return
        await self._protect(self._pipeline(name), scope, receive, send)

    async def _protect(
        self, pipeline: Pipeline, scope: Scope, receive: Receive, send: Send
    ) -> None:
        app, failure_status = self.app, self.failure_status
        status = 0  # 0 until the response starts
        calls = 0

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        async def downstream() -> None:
            nonlocal calls
            calls += 1
            if calls > 1:  # a policy tried again: the request cannot be replayed
                raise RuntimeError("a protected request cannot be run twice")
            await app(scope, receive, tracking_send)
            if failure_status is not None and status >= failure_status:
                raise ServerErrorResponse(status)

        try:
            await pipeline.acall(downstream)
        except ServerErrorResponse:
            return
        except (RejectedError, TimeoutError) as exc:
            if status:
                raise
            await _reject(exc, send)


async def _reject(exc: RejectedError | TimeoutError, send: Send) -> None:
    headers = [(b"content-type", b"application/json")]
    retry_after: float | None = None
    if isinstance(exc, TimeoutError):
        code, error = 504, "timeout"
    else:
        retry_after = exc.retry_after
        if isinstance(exc, CircuitOpenError):
            code, error = 503, "circuit_open"
        elif isinstance(exc, RateLimitedError):
            code, error = 429, "rate_limited"
        else:
            code, error = 503, "rejected"
    body: dict[str, Any] = {"error": error, "detail": redact(str(exc))}
    if retry_after is not None:
        header = retry_after_header(retry_after)
        headers.append((b"retry-after", header.encode("ascii")))
        body["retry_after"] = int(header)
    payload = json.dumps(body).encode("utf-8")
    headers.append((b"content-length", str(len(payload)).encode("ascii")))
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
