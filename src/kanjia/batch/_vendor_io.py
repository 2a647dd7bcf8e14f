"""The HTTP client of vendor batch APIs (GET, POST, multipart uploads), apart from the
gateway's request path."""

from __future__ import annotations

import aiohttp

from kanjia.errors import UpstreamError, UpstreamTimeout
from kanjia.vendors import BatchCall

__all__ = ["VendorIO"]


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
            async with self._session.request(call.method, call.url, data=data,
                                             headers=dict(call.headers)) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise UpstreamError(f"batch API {call.method} {resp.url.path}: "
                                        f"HTTP {resp.status}")
                return body
        except TimeoutError:
            raise UpstreamTimeout("the vendor's batch API did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"could not reach the vendor's batch API: "
                                f"{type(exc).__name__}") from None
