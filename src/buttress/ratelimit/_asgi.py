"""``RateLimitMiddleware``: limit HTTP requests per client, header or any key (pure ASGI).

Works with any ASGI framework; with Starlette: ``app.add_middleware(RateLimitMiddleware,
limiter=limiter)``. Every limited request gets the rate-limit header fields of the IETF draft
(draft-ietf-httpapi-ratelimit-headers, the ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset``
form, plus ``RateLimit-Policy: <limit>;w=<seconds>``); a refused one is answered 429 with
``Retry-After`` (whole seconds, rounded up) and a JSON body, and never reaches the app.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Awaitable, Callable, Hashable, MutableMapping
from typing import Any

from buttress.errors import ConfigError
from buttress.ratelimit._decision import Decision
from buttress.ratelimit._limiter import RateLimiter

__all__ = ["RateLimitMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
KeyFunction = Callable[[Scope], "Hashable | Awaitable[Hashable | None] | None"]

_HEADER_NAMES = (b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset")


def client_address(scope: Scope) -> str:
    """The client's host from the ASGI scope (behind a proxy, let the server rewrite it, e.g.
    uvicorn's ``--proxy-headers``); ``""`` when the server does not say."""
    client = scope.get("client")
    return str(client[0]) if client else ""


def _seconds(value: float) -> bytes:
    return str(max(0, math.ceil(value))).encode("ascii")


def rate_limit_headers(decision: Decision, window: float) -> list[tuple[bytes, bytes]]:
    """The ``RateLimit-*`` header fields for ``decision`` (``window``: the policy's seconds)."""
    return [
        (b"ratelimit-limit", str(decision.limit).encode("ascii")),
        (b"ratelimit-remaining", str(decision.remaining).encode("ascii")),
        (b"ratelimit-reset", _seconds(decision.reset_after)),
        (b"ratelimit-policy", f"{decision.limit};w={max(1, math.ceil(window))}".encode("ascii")),
    ]


class RateLimitMiddleware:
    """Refuse HTTP requests beyond ``limiter``'s rate with 429, per key.

    ``RateLimitMiddleware(app, *, limiter, header=None, key=None, cost=1, headers=True)``.
    The key is the client's address by default; ``header="X-API-Key"`` uses that request
    header instead (the address when it is missing); ``key=fn`` calls ``fn(scope)`` (sync or
    async) and a None result exempts the request. ``cost`` is a number or ``fn(scope)``.
    ``headers=False`` leaves allowed responses untouched. Only ``http`` requests are limited.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        header: str | None = None,
        key: KeyFunction | None = None,
        cost: float | Callable[[Scope], float] = 1,
        headers: bool = True,
    ) -> None:
        if not isinstance(limiter, RateLimiter):
            raise ConfigError("limiter", limiter, "must be a RateLimiter")
        if header is not None and key is not None:
            raise ConfigError("header", header, "must be None when key= is given")
        if header is not None and (not isinstance(header, str) or not header):
            raise ConfigError("header", header, "must be a header name")
        if key is not None and not callable(key):
            raise ConfigError("key", key, "must be a function of the ASGI scope")
        if not callable(cost) and (
            isinstance(cost, bool) or not isinstance(cost, int | float) or not cost > 0
        ):
            raise ConfigError("cost", cost, "must be a number > 0 or a function of the scope")
        self.app = app
        self.limiter = limiter
        self.key = key
        self.header = None if header is None else header.lower().encode("latin-1")
        self.cost = cost
        self.headers = headers

    async def _key(self, scope: Scope) -> Hashable | None:
        if self.key is not None:
            value = self.key(scope)
            if inspect.isawaitable(value):
                result: Hashable | None = await value
                return result
            return value
        if self.header is not None:
            for name, raw in scope.get("headers", ()):
                if name == self.header:
                    return "header:" + bytes(raw).decode("latin-1")
        return client_address(scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Limit one ASGI call: pass it on with rate-limit headers, or answer 429."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = await self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        cost = self.cost(scope) if callable(self.cost) else self.cost
        limiter = self.limiter
        decision = await limiter.atry_acquire(key, cost)
        fields = rate_limit_headers(decision, limiter.algorithm.period)
        if not decision.allowed:
            await _refuse(decision, fields, send)
            return
        if not self.headers:
            await self.app(scope, receive, send)
            return

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", ())}
                if not present.intersection(_HEADER_NAMES):
                    message = dict(message)
                    message["headers"] = [*message.get("headers", ()), *fields]
            await send(message)

        await self.app(scope, receive, send_with_fields)


async def _refuse(decision: Decision, fields: list[tuple[bytes, bytes]], send: Send) -> None:
    body: dict[str, Any] = {"error": "rate_limited", "detail": decision.reason}
    headers = [(b"content-type", b"application/json"), *fields]
    if not decision.exceeds_capacity:
        retry_after = _seconds(decision.retry_after)
        headers.append((b"retry-after", retry_after))
        body["retry_after"] = int(retry_after)
    payload = json.dumps(body).encode("utf-8")
    headers.append((b"content-length", str(len(payload)).encode("ascii")))
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
