"""HTTP plumbing shared by every vendor family: JSON bodies, SSE streams with
latency, and the transport faults (hang, reset, malformed)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web

from kanjia.sandbox._state import SandboxState, Timing

__all__ = [
    "BAD_KEY",
    "RESET_AFTER_FRAMES",
    "Handler",
    "abort_connection",
    "bad_json",
    "bearer_key",
    "hang",
    "json_response",
    "read_json",
    "reply",
    "stream",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: the one API key every keyed vendor rejects (any other non-empty key is accepted)
BAD_KEY = "bad-key"

#: frames a ``reset`` stream sends before the connection is aborted
RESET_AFTER_FRAMES = 3

_JSON = "application/json"
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_LINGER_RST = struct.pack("ii", 1, 0)
_RESET_GRACE_S = 0.05


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=_JSON, headers=headers)


async def read_json(request: web.Request) -> Any:
    """The parsed body; raises ``ValueError`` when it is not JSON."""
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"request body is not valid JSON: {exc}") from None


def bad_json(message: str) -> web.Response:
    """The OpenAI-style 400 used when a request cannot be parsed at all."""
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    }
    return json_response(body, status=400)


def bearer_key(request: web.Request) -> str:
    """The key of an ``Authorization: Bearer`` header, or ""."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


def abort_connection(request: web.Request) -> None:
    """Abort the TCP connection at once, with an RST where the socket allows it."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError, TypeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    transport.abort()


async def hang(state: SandboxState) -> None:
    await asyncio.sleep(state.settings.hang_s)


async def reply(
    request: web.Request,
    state: SandboxState,
    body: bytes,
    timing: Timing,
    chunks: int,
    fault: str | None,
) -> web.StreamResponse:
    """A non-streamed 200 after the simulated generation time, with the
    ``timeout``, ``reset`` and ``malformed`` faults applied."""
    if fault == "timeout":
        await hang(state)
    wait = timing.first + timing.chunk * chunks
    if wait > 0:
        await asyncio.sleep(wait)
    if fault == "reset":
        abort_connection(request)
        return web.Response(status=200)
    if fault in ("malformed", "truncate"):
        body = body[: max(1, len(body) // 2)]
    return web.Response(body=body, content_type=_JSON)


async def stream(
    request: web.Request,
    state: SandboxState,
    frames: Sequence[bytes],
    timing: Timing,
    fault: str | None,
    broken: bytes,
    *,
    keepalive: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """Send ``frames`` as one chunked response: the first after ``timing.first``,
    then one every ``timing.chunk`` (all in a single write when that is 0)."""
    if fault == "timeout":
        await hang(state)
    response = web.StreamResponse(headers=_SSE_HEADERS if headers is None else headers)
    await response.prepare(request)
    if timing.first > 0:
        if keepalive is not None:
            await response.write(keepalive)
        await asyncio.sleep(timing.first)
    if fault == "malformed":
        frames = [*frames[:1], broken, *frames[1:]]
    if fault == "reset":
        frames = frames[:RESET_AFTER_FRAMES]
    elif fault == "truncate":  # the first half: never the last frame (the end marker)
        frames = frames[: max(1, min(len(frames) - 1, len(frames) // 2))]
    if timing.chunk > 0:
        for i, frame in enumerate(frames):
            if i:
                await asyncio.sleep(timing.chunk)
            await response.write(frame)
    else:
        await response.write(b"".join(frames))
    if fault == "reset":
        # let the partial frames reach the client before the RST discards them
        await asyncio.sleep(max(timing.chunk, _RESET_GRACE_S))
        abort_connection(request)
        return response
    await response.write_eof()
    return response
