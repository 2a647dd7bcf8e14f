"""The batch API client never carries a vendor's key off the vendor's host."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kanjia.batch._vendor_io import VendorIO
from kanjia.errors import UpstreamError
from kanjia.vendors import BatchCall

KEY = "sk-vendor-secret-0123456789"


@pytest.fixture
async def servers() -> AsyncIterator[tuple[TestServer, TestServer, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    async def storage(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(body=b'{"ok": true}\n')

    other = TestServer(web.Application())
    other.app.router.add_get("/signed/results.jsonl", storage)
    await other.start_server()

    async def same_host_file(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(body=b"same-host")

    async def to_storage(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(str(other.make_url("/signed/results.jsonl")))

    async def to_same_host(request: web.Request) -> web.Response:
        raise web.HTTPFound("/v1/files/real/content")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/v1/loop")

    vendor = TestServer(web.Application())
    vendor.app.router.add_get("/v1/batches/b1/results", to_storage)
    vendor.app.router.add_get("/v1/files/f1/content", to_same_host)
    vendor.app.router.add_get("/v1/files/real/content", same_host_file)
    vendor.app.router.add_get("/v1/loop", loop)
    await vendor.start_server()
    yield vendor, other, seen
    await vendor.close()
    await other.close()


async def _get(vendor: TestServer, path: str, headers: dict[str, str]) -> bytes:
    """``GET path`` on ``vendor`` through a VendorIO of its own."""
    io = VendorIO()
    try:
        return await io.call(BatchCall("GET", str(vendor.make_url(path)), headers))
    finally:
        await io.close()


async def test_redirect_off_host_drops_the_key(
        servers: tuple[TestServer, TestServer, list[dict[str, str]]]) -> None:
    vendor, _, seen = servers
    body = await _get(vendor, "/v1/batches/b1/results",
                      {"x-api-key": KEY, "Authorization": f"Bearer {KEY}"})
    assert body == b'{"ok": true}\n'
    assert len(seen) == 1
    assert all(KEY not in v for v in seen[0].values())


async def test_redirect_on_the_same_host_keeps_the_key(
        servers: tuple[TestServer, TestServer, list[dict[str, str]]]) -> None:
    vendor, _, seen = servers
    body = await _get(vendor, "/v1/files/f1/content", {"x-api-key": KEY})
    assert body == b"same-host"
    assert seen[0].get("x-api-key") == KEY


async def test_redirect_loop_is_an_upstream_error(
        servers: tuple[TestServer, TestServer, list[dict[str, str]]]) -> None:
    vendor, _, _ = servers
    with pytest.raises(UpstreamError, match="too many redirects"):
        await _get(vendor, "/v1/loop", {})
