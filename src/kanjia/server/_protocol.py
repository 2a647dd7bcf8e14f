"""uvicorn's httptools protocol with the limits it lacks: a header read timeout, a body
read deadline and a connection cap that sheds slow clients first.

uvicorn arms no timer on a connection until its first response is complete, so a client
that trickles its request line, headers or body holds a connection (and a file
descriptor) for as long as it likes. Here:

- ``header_timeout_s``: from the connection's start (or from the first byte of each
  later request) to the end of its headers; past it the connection is closed (a 408
  first when nothing else is being answered on it).
- ``body_timeout_s``: from the end of the headers to the end of the body. The deadline
  is put into the scope (``kanjia.body_deadline``, loop time) where ``_asgi.read_body``
  answers 408 when it passes; one second later the connection is closed whatever the
  handler did.
- ``MAX_HEADER_BYTES``: a request line plus headers larger than this is refused (400,
  closed), so that the header timeout bounds a slow client's memory as well as its time.
- ``max_connections``: when a new connection would exceed it, one that waits for its
  client is closed: first the one that has been sending a request (headers or body)
  the longest, else the longest idle one; idle connections younger than
  ``SHED_GRACE_S`` (a real client's request arrives in its first packet), then idle
  keep-alive connections that were answered before, last.
  Connections whose request is being answered are never shed; when only such are left,
  the new one is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["BODY_DEADLINE", "guarded_protocol"]

#: the scope key holding the loop time by which the request body must have arrived
BODY_DEADLINE = "kanjia.body_deadline"
#: a connection this young is not shed for another (its request may be on its way)
SHED_GRACE_S = 0.2
#: the request line and headers of one request, at most
MAX_HEADER_BYTES = 64 * 1024
_TIMEOUT_TEXT = b"request headers not received in time"
_TIMEOUT_REPLY = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
                  b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                  % (len(_TIMEOUT_TEXT), _TIMEOUT_TEXT))


class _Guarded(HttpToolsProtocol):
    header_timeout_s: ClassVar[float] = 10.0
    body_timeout_s: ClassVar[float] = 30.0
    max_connections: ClassVar[int] = 4096

    _timer: asyncio.TimerHandle | None = None
    #: loop time since when this connection waits for its client (None: it is answered)
    waiting_since: float | None = None
    #: part of a request has arrived, not all of it
    partial: bool = False
    opened: float = 0.0
    #: a request of this connection was answered
    served: bool = False
    _header_bytes: int = 0

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.opened = self.loop.time()
        self._arm(self.header_timeout_s, self._header_timeout)
        if len(self.connections) > self.max_connections:
            self._shed()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.waiting_since = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.partial = True
        self._header_bytes = 0
        if self._timer is None:
            self._arm(self.header_timeout_s, self._header_timeout)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > MAX_HEADER_BYTES:
            # raised inside the parser: uvicorn answers 400 and closes the connection
            raise httptools.HttpParserError(f"request headers exceed {MAX_HEADER_BYTES} bytes")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        now = self.loop.time()
        self.scope[BODY_DEADLINE] = now + self.body_timeout_s  # type: ignore[literal-required]
        self._arm(self.body_timeout_s + 1.0, self._body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self.waiting_since = None
        self.partial = False

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.served = True
        if not self.transport.is_closing() and not self.pipeline:
            self.waiting_since = self.loop.time()  # keep-alive: idle until the next request

    # -- timers --------------------------------------------------------------------------
    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)
        if self.waiting_since is None:
            self.waiting_since = self.loop.time()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _header_timeout(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_TIMEOUT_REPLY)
        self.transport.close()

    def _body_timeout(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()

    # -- the connection cap ----------------------------------------------------------------
    def _shed(self) -> None:
        young = self.loop.time() - SHED_GRACE_S
        best: tuple[int, float] | None = None
        victim: _Guarded = self
        for conn in self.connections:
            if not isinstance(conn, _Guarded) or conn is self:
                continue
            since = conn.waiting_since
            if since is None or conn.transport.is_closing():
                continue
            # partial requests first, then idle connections past the grace, then younger
            # ones, then idle keep-alive connections that were answered before (a client
            # that sends whole requests); the oldest first in each
            rank = (0 if conn.partial else 3 if conn.served
                    else 1 if conn.opened <= young else 2, since)
            if best is None or rank < best:
                best, victim = rank, conn
        victim.transport.close()
        self.connections.discard(victim)  # now, not when the loop reports it closed


def guarded_protocol(*, header_timeout_s: float, body_timeout_s: float,
                     max_connections: int) -> type[asyncio.Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with these limits."""
    return type("GuardedHttpToolsProtocol", (_Guarded,), {
        "header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s,
        "max_connections": max_connections})
