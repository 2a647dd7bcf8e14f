"""The one HTTP client to vendors (aiohttp: measured far faster than httpx here)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from kanjia.config import ServerSettings
from kanjia.errors import KanjiaError, UpstreamError, UpstreamTimeout
from kanjia.vendors import UpstreamRequest

__all__ = ["Upstream", "UpstreamResponse"]


class UpstreamResponse:
    """An open upstream response; the caller must ``release()`` it."""

    __slots__ = ("_resp", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = resp.headers

    @property
    def is_event_stream(self) -> bool:
        """SSE (text/event-stream) or AWS event-stream (application/vnd.amazon.eventstream)."""
        kind = self._resp.headers.get("Content-Type", "")
        return "event-stream" in kind or "vnd.amazon.eventstream" in kind

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except TimeoutError:
            raise UpstreamTimeout("vendor timed out while sending its response") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"vendor connection failed: {type(exc).__name__}") from None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._resp.content.iter_any():
                yield data
        except TimeoutError:
            raise UpstreamTimeout("vendor stream stalled") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"vendor stream broke: {type(exc).__name__}") from None

    def release(self) -> None:
        self._resp.release()

    def close(self) -> None:
        self._resp.close()


class Upstream:
    def __init__(self, settings: ServerSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=settings.upstream_timeout_s,
                                              connect=settings.connect_timeout_s)
        self._stream_timeout = aiohttp.ClientTimeout(total=None,
                                                     connect=settings.connect_timeout_s,
                                                     sock_read=settings.first_byte_timeout_s)

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300,
                                             keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True,
                                                  skip_auto_headers=("User-Agent",))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, req: UpstreamRequest, stream: bool) -> UpstreamResponse:
        if self._session is None:
            await self.start()
        assert self._session is not None
        try:
            # never followed: a redirect would carry the vendor's key (x-api-key, api-key)
            # to wherever it points; a 3xx is the vendor's answer, not a success
            resp = await self._session.post(
                req.url, data=req.body, headers=req.headers, allow_redirects=False,
                timeout=self._stream_timeout if stream else self._timeout)
        except TimeoutError:
            raise UpstreamTimeout("vendor did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"could not reach vendor: {type(exc).__name__}") from None
        return UpstreamResponse(resp)

    async def send_read(self, req: UpstreamRequest) -> tuple[int, bytes, UpstreamResponse]:
        resp = await self.send(req, stream=False)
        try:
            data = await resp.read()
        except KanjiaError:
            resp.close()
            raise
        resp.release()
        return resp.status, data, resp
