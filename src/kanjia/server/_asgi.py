"""Minimal ASGI plumbing: read a bounded body, send JSON, send SSE. No framework:
a framework's routing and middleware cost more than the whole request path here."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from kanjia.errors import BadRequest, KanjiaError, PayloadTooLarge, RequestTimeout
from kanjia.server._protocol import BODY_DEADLINE

__all__ = ["Receive", "Scope", "Send", "read_body", "safe_headers", "send_bytes", "send_error",
           "send_json", "start_sse"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON_CT = (b"content-type", b"application/json")
#: how long a request body may take when the server sets no deadline of its own
BODY_TIMEOUT_S = 30.0
#: characters no header value may carry (C0 and C1 controls, DEL)
_HEADER_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f]")


def safe_headers(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` with every control character in a value replaced by ``?``: model,
    vendor, deployment and route names come from configs, clients and vendors, and
    none may split or forge a header. (A printable value has none: the common case
    runs no regular expression.)"""
    return {k: v if v.isprintable() else _HEADER_UNSAFE.sub("?", v)
            for k, v in headers.items()}


def _headers(extra: dict[str, str] | None, content_type: tuple[bytes, bytes]
             ) -> list[tuple[bytes, bytes]]:
    out = [content_type]
    if extra:
        out.extend((k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in extra.items())
    return out


async def read_body(scope: Scope, receive: Receive, limit: int,
                    timeout_s: float = BODY_TIMEOUT_S) -> bytes:
    """The request body, at most ``limit`` bytes, received by the scope's body deadline
    (``kanjia.body_deadline``, set by the gateway's protocol from ``body_timeout_s``), or
    else within ``timeout_s``: a client that trickles its body gets a 408 and the
    connection is closed."""
    loop = asyncio.get_running_loop()
    deadline = scope.get(BODY_DEADLINE) or loop.time() + timeout_s
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                if int(value) > limit:
                    raise PayloadTooLarge(f"request body exceeds {limit} bytes")
            except ValueError:
                raise BadRequest("invalid Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            async with asyncio.timeout_at(deadline):  # a timer, not a task per read
                message = await receive()
        except TimeoutError:
            raise RequestTimeout("the request body was not received in time") from None
        if message["type"] == "http.disconnect":
            raise BadRequest("client disconnected while sending the request")
        body = message.get("body", b"")
        if body:
            size += len(body)
            if size > limit:
                raise PayloadTooLarge(f"request body exceeds {limit} bytes")
            chunks.append(body)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_bytes(send: Send, status: int, body: bytes, headers: dict[str, str] | None = None,
                     content_type: bytes = b"application/json") -> None:
    out = _headers(headers, (b"content-type", content_type))
    out.append((b"content-length", b"%d" % len(body)))  # not chunked: one body, known size
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, obj: Any, headers: dict[str, str] | None = None
                    ) -> None:
    await send_bytes(send, status, orjson.dumps(obj), headers)


async def send_error(send: Send, exc: KanjiaError, headers: dict[str, str] | None = None
                     ) -> None:
    extra = dict(headers or {})
    if exc.status == 408:  # the rest of a late body is not worth reading: close
        extra["connection"] = "close"
    if exc.retry_after is not None:
        extra["retry-after"] = str(int(exc.retry_after + 0.999))
    if exc.request_id is not None:
        extra["x-kanjia-request-id"] = exc.request_id
    await send_json(send, exc.status, exc.body(), extra)


async def start_sse(send: Send, headers: dict[str, str]) -> None:
    hdrs = _headers(headers, (b"content-type", b"text/event-stream"))
    hdrs.append((b"cache-control", b"no-cache"))
    await send({"type": "http.response.start", "status": 200, "headers": hdrs})


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def bearer(scope: Scope) -> str | None:
    """The API key a request presents: ``Authorization: Bearer``, ``x-api-key`` or
    ``api-key``."""
    auth = header(scope, b"authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return header(scope, b"x-api-key") or header(scope, b"api-key")
