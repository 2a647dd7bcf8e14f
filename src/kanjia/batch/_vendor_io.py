"""The HTTP client of vendor batch APIs (GET, POST, multipart uploads), apart from the
gateway's request path."""

from __future__ import annotations

import aiohttp
from yarl import URL

from kanjia.errors import UpstreamError, UpstreamTimeout
from kanjia.vendors import BatchCall

__all__ = ["VendorIO"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5


class VendorIO:
    def __init__(self, timeout_s: float = 120.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, call: BatchCall) -> bytes:
        """The answer's body; an ``UpstreamError`` for a failed call or a 4xx/5xx."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        data: aiohttp.FormData | bytes | None = call.body
        if call.form:
            form = aiohttp.FormData()
            for name, filename, value in call.form:
                if filename is None:
                    form.add_field(name, value.decode())
                else:
                    form.add_field(name, value, filename=filename,
                                   content_type="application/jsonl")
            data = form
        try:
            return await self._send(self._session, call, data)
        except TimeoutError:
            raise UpstreamTimeout("the vendor's batch API did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"could not reach the vendor's batch API: "
                                f"{type(exc).__name__}") from None

    @staticmethod
    async def _send(session: aiohttp.ClientSession, call: BatchCall,
                    data: aiohttp.FormData | bytes | None) -> bytes:
        """Redirects are followed by hand: to the vendor's own host with its headers, anywhere
        else (a signed download URL) without them, so the vendor's key never leaves its host."""
        url = URL(call.url)
        method, headers = call.method, dict(call.headers)
        for _ in range(_MAX_REDIRECTS + 1):
            async with session.request(method, url, data=data, headers=headers,
                                       allow_redirects=False) as resp:
                location = resp.headers.get("Location")
                if resp.status in _REDIRECTS and location:
                    target = url.join(URL(location))
                    if target.origin() != url.origin():
                        headers = {}
                    if resp.status == 303:
                        method, data = "GET", None
                    url = target
                    continue
                body = await resp.read()
                if resp.status >= 300:
                    raise UpstreamError(f"batch API {call.method} {resp.url.path}: "
                                        f"HTTP {resp.status}")
                return body
        raise UpstreamError(f"batch API {call.method} {URL(call.url).path}: too many redirects")
