"""The request body limit: HTTP/1 requests are checked by their headers, streams are counted."""

from __future__ import annotations

from typing import Any

from starlette.types import Message, Receive, Scope, Send

from buttress.ops._http import BodyLimitMiddleware


def _scope(version: str, headers: list[tuple[bytes, bytes]]) -> Scope:
    return {"type": "http", "http_version": version, "method": "POST", "headers": headers}


async def _call(
    version: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[list[Message], list[Any]]:
    seen: list[Any] = []
    sent: list[Message] = []
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]

    async def receive() -> Message:
        return pending.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    async def app(scope: Scope, receive_: Receive, send_: Send) -> None:
        seen.append(receive_)
        while (await receive_()).get("more_body"):
            pass
        await send_({"type": "http.response.start", "status": 200, "headers": []})
        await send_({"type": "http.response.body", "body": b"ok"})

    middleware = BodyLimitMiddleware(app, max_bytes=10)
    await middleware(_scope(version, headers), receive, send)
    seen.append(receive)
    return sent, seen


async def test_http1_without_a_chunked_body_passes_straight_through() -> None:
    """An HTTP/1.1 request with a small Content-Length (or none) reaches the app unwrapped."""
    for headers in ([], [(b"content-length", b"4")]):
        sent, (given, original) = await _call("1.1", headers, [b"abcd"])
        assert given is original
        assert sent[0]["status"] == 200


async def test_chunked_and_http2_bodies_are_counted() -> None:
    """A chunked HTTP/1.1 body, or an HTTP/2 body without Content-Length, over the limit is 413."""
    for version, headers in (("1.1", [(b"transfer-encoding", b"chunked")]), ("2", [])):
        sent, _ = await _call(version, headers, [b"123456", b"789012"])
        assert sent[0]["status"] == 413
