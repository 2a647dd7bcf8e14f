"""Relay a gateway stream to the client: the one SSE writer of every client API.

The chat handler relays chat chunks framed as they are (``ChatFrames``); the Messages
and Responses handlers re-render the same chunks (``start`` / ``feed`` / ``finish`` /
``fail``). One write per upstream read; the last one goes out with the closing frame
(after the record is journaled). A client that goes away stops the relay; the
call is settled either way, and its record is journaled before the client's last frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from kanjia.server import _asgi
from kanjia.server._asgi import Receive, Send
from kanjia.server.gateway import StreamOutcome

__all__ = ["ChatFrames", "Renderer", "relay"]


class Renderer(Protocol):
    failed: bool

    def start(self) -> bytes: ...

    def feed(self, payloads: list[bytes]) -> bytes: ...

    def finish(self) -> bytes: ...

    def fail(self, message: str, kind: str = ...) -> bytes: ...


class ChatFrames:
    """Chat chunks as they are: ``data: <chunk>`` frames, ``data: [DONE]`` after the
    vendor's own end marker. A stream cut short has already carried its error payload
    (the gateway's ``rest`` ends on it), so it ends there, without ``[DONE]``."""

    __slots__ = ("failed",)

    def __init__(self) -> None:
        self.failed = False

    def start(self) -> bytes:
        return b""

    def feed(self, payloads: list[bytes]) -> bytes:
        if len(payloads) == 1:
            return b"data: %s\n\n" % payloads[0]
        return b"".join([b"data: %s\n\n" % p for p in payloads])

    def finish(self) -> bytes:
        return b"data: [DONE]\n\n"

    def fail(self, message: str, kind: str = "upstream_error") -> bytes:
        self.failed = True
        return b""


async def relay(outcome: StreamOutcome, renderer: Renderer, receive: Receive, send: Send,
                headers: dict[str, str],
                before_end: Callable[[], Awaitable[None]] | None = None) -> None:
    """Write the stream; ``before_end`` runs after the upstream finished and before the
    client gets the closing events (a stored response exists before the client knows
    its id is complete)."""
    await _asgi.start_sse(send, headers)
    disconnected = asyncio.Event()

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected.set()
                return

    watcher = asyncio.ensure_future(watch())
    gone = finished = False
    try:
        first = renderer.start() + renderer.feed(outcome.first) if outcome.first \
            else renderer.start()
        if first:
            await _body(send, first)
        last = b""  # what came after the vendor's end: written with the closing frame
        async for payloads in outcome.rest:
            if disconnected.is_set():
                gone = True
                break
            out = renderer.feed(payloads)
            if outcome.ended():
                last += out
            elif out:
                await _body(send, out)
        if not gone and not disconnected.is_set():
            if not outcome.complete():  # no end marker
                end = renderer.fail("the upstream stream ended before its end; "
                                    "the answer is incomplete")
            else:
                end = renderer.finish()
            if before_end is not None:
                await before_end()
            finished = True
            pending = outcome.finish(False)  # journaled before the client's last frame
            if pending is not None:
                await pending
            await send({"type": "http.response.body", "body": last + end, "more_body": False})
        gone = gone or disconnected.is_set()
    except OSError:
        gone = True
    finally:
        watcher.cancel()
        await _close(outcome.rest)
        if not finished:
            outcome.finish(gone)


async def _body(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _close(gen: Any) -> None:
    aclose = getattr(gen, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # closing an already-failed stream
            return
