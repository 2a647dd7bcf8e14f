"""Relay a gateway stream to the client, re-rendered for another client API.

The chat handler writes chat chunks as they come; the Messages and Responses handlers
write the same stream through a re-renderer (``start`` / ``feed`` / ``finish`` / ``fail``).
A client that goes away stops the relay; the call is settled either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from kanjia.ingress import sse_payloads
from kanjia.server import _asgi
from kanjia.server._asgi import Receive, Send
from kanjia.server.gateway import StreamOutcome

__all__ = ["Renderer", "relay"]


class Renderer(Protocol):
    failed: bool

    def start(self) -> bytes: ...

    def feed(self, payloads: list[bytes]) -> bytes: ...

    def finish(self) -> bytes: ...

    def fail(self, message: str, kind: str = ...) -> bytes: ...


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
        await _body(send, renderer.start() + renderer.feed(list(outcome.first)))
        async for frames in outcome.rest:
            if disconnected.is_set():
                gone = True
                break
            out = renderer.feed(sse_payloads(frames))
            if out:
                await _body(send, out)
        if not gone and not disconnected.is_set():
            if not outcome.complete():  # no end marker, no error event
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
            await send({"type": "http.response.body", "body": end, "more_body": False})
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
