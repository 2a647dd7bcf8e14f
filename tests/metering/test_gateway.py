"""Metering inside a real gateway (in-process) in front of the vendor sandbox: what the
ledger keeps for streams, disconnects and errors; 401/403 over HTTP; the admin API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from tests._waiting import until_async
from tests.metering._gateway import MASTER, admin, chat_body, post_chat

from kanjia.config import load_settings
from kanjia.ledger.store import open_database
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app


@pytest.fixture(scope="module")
def gw(sandbox: SandboxThread, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[tuple[ServerThread, str]]:
    root = tmp_path_factory.mktemp("gw")
    database = str(root / "ledger.db")
    settings = load_settings(None, sandbox_url=sandbox.url, database=database,
                             server={"upstream_timeout_s": 5.0, "first_byte_timeout_s": 5.0})
    app = build_app(settings, env={"KANJIA_MASTER_KEY": MASTER,
                                   "KANJIA_JOURNAL_DIR": str(root / "journal"),
                                   "KANJIA_LEDGER_FLUSH_S": "0.05"})
    with ServerThread(app) as srv:
        yield srv, database


async def _record(database: str, rid: str) -> dict[str, Any]:
    db = open_database(database)
    await db.connect()
    try:
        for _ in range(100):
            rows = await db.fetch(
                "SELECT stream, client_disconnected, usage_estimated, output_tokens, cost_nano,"
                " status, error_class, key_id, charge_nano FROM usage_records "
                "WHERE request_id = ?", (rid,))
            if rows:
                names = ("stream", "client_disconnected", "usage_estimated", "output_tokens",
                         "cost_nano", "status", "error_class", "key_id", "charge_nano")
                return dict(zip(names, rows[0], strict=True))
            await asyncio.sleep(0.05)
    finally:
        await db.close()
    raise AssertionError(f"{rid} never reached the ledger")


async def test_streams_and_disconnects(gw: tuple[ServerThread, str]) -> None:
    srv, database = gw
    async with aiohttp.ClientSession() as s:
        body = {**chat_body(60), "stream": True, "stream_options": {"include_usage": True}}
        async with s.post(srv.url + "/v1/chat/completions", json=body) as resp:
            assert resp.status == 200
            await resp.read()
            full = await _record(database, resp.headers["x-kanjia-request-id"])
        assert (full["stream"], full["client_disconnected"], full["output_tokens"]) == (1, 0, 60)
        assert not full["usage_estimated"] and full["cost_nano"] > 0

        body = chat_body(2000, text="long story [[sandbox:chunk_ms=5]]")
        body["stream"] = True
        resp = await s.post(srv.url + "/v1/chat/completions", json=body)
        rid = resp.headers["x-kanjia-request-id"]
        seen = 0
        async for _ in resp.content:
            seen += 1
            if seen >= 20:
                break
        resp.close()  # the client goes away mid-stream
    cut = await _record(database, rid)
    assert cut["client_disconnected"] == 1 and cut["stream"] == 1
    assert 0 < cut["output_tokens"] < 2000  # what was generated so far: never 0, never all
    assert cut["cost_nano"] > 0


async def test_keys_budgets_and_errors_over_http(gw: tuple[ServerThread, str]) -> None:
    srv, database = gw
    async with aiohttp.ClientSession() as s:
        status, made = await admin(s, srv.url, "POST", "/admin/keys", {
            "name": "http", "budget": ["10CNY/day", "1USD/month"], "models": ["deepseek/*"],
            "rpm": 1000})
        assert status == 201 and made["key"].startswith("kj-")
        key = made["key"]
        assert (await post_chat(s, srv.url, chat_body(), None)).status == 401
        assert (await post_chat(s, srv.url, chat_body(), "kj-wrong")).status == 401
        denied = await post_chat(s, srv.url, chat_body(model="qwen/qwen-plus"), key)
        assert (denied.status, denied.code) == (403, "model_not_allowed")
        ok = await post_chat(s, srv.url, chat_body(), key)
        assert ok.status == 200
        rec = await _record(database, ok.request_id or "")
        assert rec["key_id"] == made["id"] and rec["charge_nano"] == rec["cost_nano"]
        failed = await post_chat(s, srv.url, chat_body(text="[[sandbox:fault=context_too_long]]"),
                                 key)
        assert failed.status == 400
        status, got = await admin(s, srv.url, "GET", f"/admin/keys/{made['id']}")
        assert status == 200
        assert {b["period"] for b in got["budgets"]} == {"day", "month"}

        async def settled() -> bool:  # settlement runs just after the response
            nonlocal got
            status, got = await admin(s, srv.url, "GET", f"/admin/keys/{made['id']}")
            assert status == 200
            return all(b["reserved"] == "0" for b in got["budgets"])

        await until_async(settled, "the failure to release its hold")
        assert all(float(b["spent"]) > 0 for b in got["budgets"])


async def test_admin_api(gw: tuple[ServerThread, str]) -> None:
    srv, _ = gw
    async with aiohttp.ClientSession() as s:
        async with s.get(srv.url + "/admin/keys") as resp:
            assert resp.status == 401
        async with s.get(srv.url + "/admin/keys", headers={"Authorization": "Bearer x"}) as r:
            assert r.status == 401
        status, made = await admin(s, srv.url, "POST", "/admin/keys",
                                   {"name": "shop-customer", "tenant": "shop", "tpm": 5000})
        assert status == 201
        status, tenant = await admin(s, srv.url, "PUT", "/admin/tenants/shop",
                                     {"markup": "1.25", "budget": "100CNY/month"})
        assert status == 200 and tenant["markup"] == "1.25"
        status, listed = await admin(s, srv.url, "GET", "/admin/keys")
        assert made["id"] in {k["id"] for k in listed["data"]}
        assert all("key" not in k and "key_hash" not in k for k in listed["data"])
        ok = await post_chat(s, srv.url, chat_body(), made["key"])
        assert ok.status == 200
        status, budgets = await admin(s, srv.url, "GET", "/admin/budgets")
        shop = next(b for b in budgets["data"] if b["id"] == "tenant:shop:month")
        assert float(shop["spent"]) > 0
        status, made_b = await admin(s, srv.url, "POST", "/admin/budgets", {
            "scope": "key", "subject": made["id"], "budget": "2USD/total"})
        assert status == 201 and made_b["data"][0]["currency"] == "USD"
        status, _ = await admin(s, srv.url, "DELETE", f"/admin/budgets/{made_b['data'][0]['id']}")
        assert status == 200
        status, _ = await admin(s, srv.url, "POST", "/admin/budgets", {
            "scope": "key", "subject": made["id"], "budget": "2EUR/day"})
        assert status == 400
        status, usage = await admin(s, srv.url, "GET", "/admin/usage?by=tenant&currency=USD")
        assert status == 200 and usage["total"]["currency"] == "USD"
        row = next(r for r in usage["rows"] if r["tenant"] == "shop")
        assert row["charge"] == pytest.approx(row["amount"] * 1.25, rel=1e-6)
        status, _ = await admin(s, srv.url, "DELETE", f"/admin/keys/{made['id']}")
        assert status == 200
        assert (await post_chat(s, srv.url, chat_body(), made["key"])).status == 401
        status, _ = await admin(s, srv.url, "GET", "/admin/keys/nobody")
        assert status == 404
