"""Two test aids around every vendor route (aiohttp middlewares):

- every request's method and raw path (query included, exactly as received) is kept in
  ``SandboxState.received`` (the last 1,000; ``GET /_sandbox/requests``), so a test can
  assert which URL a gateway really called;
- ``[[sandbox:echo_key]]`` in a request makes its error answer (status >= 400, or MiniMax's
  error in a 200) quote the credential it came with inside the vendor's own message
  field, as some real vendors do ("Incorrect API key provided: ..."), so a test can
  check that a gateway never relays its key to a client.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from kanjia.sandbox._state import SandboxState
from kanjia.sandbox._wire import Handler

__all__ = ["ECHO_KEY", "echo_key_middleware", "record_middleware"]

ECHO_KEY = b"[[sandbox:echo_key]]"
_MESSAGE_FIELDS = frozenset({"message", "msg", "error_msg", "Message", "status_msg"})
_KEY_HEADERS = ("x-api-key", "x-goog-api-key", "api-key")


def record_middleware(state: SandboxState) -> Any:
    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/_sandbox/"):
            state.received.append({"method": request.method, "path": request.raw_path})
        return await handler(request)

    return record


def _credential(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return next((request.headers[h] for h in _KEY_HEADERS if request.headers.get(h)), "")


def _quote_key(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {k: (f"{v} (API key provided: {key})" if k in _MESSAGE_FIELDS
                    and isinstance(v, str) else _quote_key(v, key)) for k, v in value.items()}
    if isinstance(value, list):
        return [_quote_key(v, key) for v in value]
    return value


def _error_in_200(raw: bytes) -> bool:
    """MiniMax answers some errors with HTTP 200 and a non-zero ``base_resp`` code."""
    return b'"base_resp"' in raw and b'"status_code":0,' not in raw \
        and b'"status_code":0}' not in raw


@web.middleware
async def echo_key_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not isinstance(response, web.Response) or request.method != "POST" \
            or ECHO_KEY not in await request.read():
        return response
    raw = response.body if isinstance(response.body, bytes) else b""
    if response.status < 400 and not _error_in_200(raw):
        return response
    key = _credential(request)
    try:
        body = orjson.dumps(_quote_key(orjson.loads(raw), key))
    except orjson.JSONDecodeError:
        body = raw + f" (API key provided: {key})".encode()
    echoed = web.Response(body=body, status=response.status,
                          content_type=response.content_type)
    for name in ("Retry-After",):
        if name in response.headers:
            echoed.headers[name] = response.headers[name]
    return echoed
