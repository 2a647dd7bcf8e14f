"""Budgets hold on every path, and nothing the client asked for is silently changed.

A real gateway (in-process) with a ledger in front of the vendor sandbox. Each test
reproduces an attack from the hostile-client probe (issue 17: F1, F3, F4, F6) or a case
of the bill-truth issue (worst-case reservation, unpriced models, output limits, ``n``,
chat vs embeddings, stream usage chunks, revocation); each failed on the code before.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest
from tests.metering._gateway import MASTER, admin, chat_body

from kanjia.config import load_settings
from kanjia.ledger.store import open_database
from kanjia.metering import Registry
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app

ROUTES = {
    # an ordered route whose fallback is far dearer than its first choice
    "dear-fallback": {"models": ["deepseek/deepseek-chat", "openai/gpt-4o"],
                      "objective": "ordered"},
    # an ordered route across two vendors
    "or-first": {"models": ["openrouter/qwen/qwen-max", "siliconflow/Qwen/Qwen2.5-7B-Instruct"],
                 "objective": "ordered"},
}


@pytest.fixture(scope="module")
def gw(sandbox: SandboxThread, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[tuple[ServerThread, str]]:
    root = tmp_path_factory.mktemp("paths")
    database = str(root / "ledger.db")
    settings = load_settings(None, sandbox_url=sandbox.url, database=database, routes=ROUTES,
                             batch_queue=str(root / "queue.db"),
                             server={"upstream_timeout_s": 5.0, "first_byte_timeout_s": 5.0})
    app = build_app(settings, env={"KANJIA_MASTER_KEY": MASTER,
                                   "KANJIA_JOURNAL_DIR": str(root / "journal"),
                                   "KANJIA_LEDGER_FLUSH_S": "0.05"})
    with ServerThread(app) as srv:
        yield srv, database


@pytest.fixture()
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        yield s


async def _key(s: aiohttp.ClientSession, url: str, **fields: Any) -> dict[str, Any]:
    status, made = await admin(s, url, "POST", "/admin/keys", {"name": "k", **fields})
    assert status == 201, made
    return dict(made)


async def _post(s: aiohttp.ClientSession, url: str, body: dict[str, Any], key: str | None,
                path: str = "/v1/chat/completions",
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], Any]:
    h = {"Authorization": f"Bearer {key}"} if key else {}
    async with s.post(url + path, json=body, headers={**h, **(headers or {})}) as resp:
        return resp.status, orjson.loads(await resp.read()), resp.headers


def _worst(message: str) -> Decimal:
    found = re.search(r"may cost up to ([0-9.]+) ([A-Z]{3})", message)
    assert found is not None, message
    return Decimal(found[1])


async def _spent(s: aiohttp.ClientSession, url: str, key_id: str) -> Decimal:
    """The key's settled spend (settlement follows the response by one loop pass)."""
    for _ in range(200):
        status, got = await admin(s, url, "GET", f"/admin/keys/{key_id}")
        assert status == 200
        if all(b["reserved"] == "0" for b in got["budgets"]):
            return Decimal(got["budgets"][0]["spent"])
        await asyncio.sleep(0.02)
    raise AssertionError("reservations never settled")


async def _record(database: str, rid: str) -> dict[str, Any]:
    db = open_database(database)
    await db.connect()
    names = ("input_tokens", "output_tokens", "usage_estimated", "status", "vendor")
    try:
        for _ in range(200):
            rows = await db.fetch(f"SELECT {', '.join(names)} FROM usage_records "
                                  "WHERE request_id = ?", (rid,))
            if rows:
                return dict(zip(names, rows[0], strict=True))
            await asyncio.sleep(0.05)
    finally:
        await db.close()
    raise AssertionError(f"{rid} never reached the ledger")


# -- worst-case reservation ----------------------------------------------------------------


async def test_a_request_whose_worst_case_does_not_fit_is_refused(
        gw: tuple[ServerThread, str], session: aiohttp.ClientSession) -> None:
    """The new-user case: a 0.002 CNY/day key spent 0.005472 CNY in one request. Without
    max_tokens the worst case is deepseek-chat's whole output limit: refused up front."""
    srv, _ = gw
    made = await _key(session, srv.url, budget="0.002CNY/day")
    body = {"model": "deepseek/deepseek-chat",
            "messages": [{"role": "user", "content": "write a long essay [[sandbox:tokens=1368]]"}]}
    status, data, _ = await _post(session, srv.url, body, made["key"])
    assert status == 429 and data["error"]["code"] == "budget_exceeded"
    message = data["error"]["message"]
    assert "0.002 CNY budget today" in message and "resets on" in message
    assert _worst(message) > Decimal("1")  # 384000 output tokens at 4 CNY/1M
    assert await _spent(session, srv.url, made["id"]) == 0  # nothing was called
    # small requests fit until the budget is used up; never beyond it, even in parallel
    small = chat_body(20)
    outcomes = await asyncio.gather(*(_post(session, srv.url, small, made["key"])
                                      for _ in range(60)))
    codes = {(st, d.get("error", {}).get("code")) for st, d, _ in outcomes}
    assert codes == {(200, None), (429, "budget_exceeded")}
    assert await _spent(session, srv.url, made["id"]) <= Decimal("0.002")


async def test_without_an_output_limit_the_context_window_bounds_the_worst_case(
        gw: tuple[ServerThread, str], session: aiohttp.ClientSession) -> None:
    """moonshot-v1-8k has no output limit in the catalog: a request without max_tokens may
    be billed for whatever its 8192-token context leaves, not an assumed 4096."""
    srv, _ = gw
    made = await _key(session, srv.url, budget="0.01CNY/day")
    status, data, _ = await _post(session, srv.url,
                                  chat_body(5, model="moonshot/moonshot-v1-8k") | {
                                      "max_tokens": None}, made["key"])
    assert status == 429, data
    # ~8150 tokens at moonshot-v1-8k's output price (10 CNY/1M), not 4096 of them
    assert _worst(data["error"]["message"]) > Decimal("0.08")


async def test_f1_two_output_limits_are_refused_and_the_vendor_sees_the_reserved_one(
        gw: tuple[ServerThread, str], session: aiohttp.ClientSession) -> None:
    """F1: max_completion_tokens 1 reserved, max_tokens 4000 forwarded (renamed)."""
    srv, _ = gw
    made = await _key(session, srv.url, budget="0.00263CNY/day")
    body = {**chat_body(4000, max_tokens=4000), "max_completion_tokens": 1}
    status, data, _ = await _post(session, srv.url, body, made["key"])
    assert (status, data["error"]["code"]) == (400, "invalid_parameter_combination")
    # one limit alone: the vendor (deepseek renames it to max_tokens) gets that limit
    one = {**chat_body(4000), "max_completion_tokens": 3}
    del one["max_tokens"]
    status, data, _ = await _post(session, srv.url, one, made["key"])
    assert status == 200 and data["usage"]["completion_tokens"] == 3
    assert await _spent(session, srv.url, made["id"]) <= Decimal("0.00263")


# -- no silent changes ---------------------------------------------------------------------


async def test_output_limits_n_and_endpoints_are_checked_not_changed(
        gw: tuple[ServerThread, str], session: aiohttp.ClientSession) -> None:
    srv, _ = gw
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/chat/completions", chat_body(5, max_tokens=100_000_000), "at most 1000000"),
        ("/v1/chat/completions", chat_body(5, max_tokens=500_000), "384000"),
        ("/v1/chat/completions", chat_body(5, max_tokens=20_000, model="openai/gpt-4o"),
         "output limit of 16384"),
        ("/v1/chat/completions", {**chat_body(5), "n": 129}, "at most 128"),
        ("/v1/chat/completions", {**chat_body(5), "n": 2}, "'n' > 1"),
        ("/v1/chat/completions", chat_body(5, model="openai/text-embedding-3-small"),
         "is an embeddings model"),
        ("/v1/embeddings", {"model": "deepseek/deepseek-chat", "input": "hi"},
         "not an embeddings model"),
    ]
    for path, body, expected in cases:
        status, data, _ = await _post(session, srv.url, body, MASTER, path)
        assert status == 400, (body, data)
        assert expected in data["error"]["message"], data
    # a vendor that supports n gets it, and answers with n choices
    status, data, _ = await _post(session, srv.url,
                                  {**chat_body(5, model="qwen/qwen-plus"), "n": 2}, MASTER)
    assert status == 200 and len(data["choices"]) == 2
    # a route skips the candidates that cannot serve the request as asked
    status, data, headers = await _post(session, srv.url,
                                        {**chat_body(5, model="dear-fallback"), "n": 2}, MASTER)
    assert status == 200 and headers["x-kanjia-vendor"] == "openai"
    assert len(data["choices"]) == 2


@pytest.mark.parametrize("model", ["deepseek/deepseek-chat", "zhipu/glm-4-flash",
                                   "anthropic/claude-3-5-haiku-20241022",
                                   "gemini/gemini-2.0-flash"])
async def test_a_stream_has_a_usage_chunk_only_when_asked(
        gw: tuple[ServerThread, str], session: aiohttp.ClientSession, model: str) -> None:
    srv, _ = gw
    for asked in (False, True):
        body: dict[str, Any] = {**chat_body(30, model=model), "stream": True}
        if asked:
            body["stream_options"] = {"include_usage": True}
        async with session.post(srv.url + "/v1/chat/completions", json=body,
                                headers={"Authorization": f"Bearer {MASTER}"}) as resp:
            assert resp.status == 200
            raw = (await resp.read()).decode()
        chunks = [orjson.loads(line[6:]) for line in raw.splitlines()
                  if line.startswith("data: {")]
        usage_only = [c for c in chunks if c.get("usage") and not c.get("choices")]
        if asked:  # one usage chunk (a vendor that puts usage on its last content chunk,
            # like Zhipu, has none of its own: the usage rides on that chunk)
            assert len([c for c in chunks if c.get("usage")]) == 1, model
        else:
            assert usage_only == [], (model, usage_only)


# -- unpriced models -----------------------------------------------------------------------


async def test_an_unpriced_model_cannot_be_called_under_a_budget(
        gw: tuple[ServerThread, str], session: aiohttp.ClientSession) -> None:
    """A made-up model name resolved for an enabled vendor has no price: it used to cost
    0 and skip the budget (200000 tokens on a 1 CNY/day key)."""
    srv, _ = gw
    budgeted = await _key(session, srv.url, budget="1CNY/day")
    status, data, _ = await _post(session, srv.url,
                                  chat_body(200, model="deepseek/made-up-model"),
                                  budgeted["key"])
    assert (status, data["error"]["code"]) == (403, "model_not_priced")
    assert "unpriced_price" in data["error"]["message"]
    free = await _key(session, srv.url)  # no budget: nothing to protect
    status, _, headers = await _post(session, srv.url,
                                     chat_body(20, model="deepseek/made-up-model"), free["key"])
    assert status == 200 and headers["x-kanjia-price-period"] == "unpriced"


# -- embeddings and tools (F3, F4) ---------------------------------------------------------


async def test_f3_embeddings_reserve_their_input(
        gw: tuple[ServerThread, str], session: aiohttp.ClientSession) -> None:
    srv, _ = gw
    made = await _key(session, srv.url, budget="0.01CNY/day")
    big = {"model": "openai/text-embedding-3-small",
           "input": ["the quick brown fox jumps over the lazy dog " * 1000] * 20}  # ~200k tokens
    status, data, _ = await _post(session, srv.url, big, made["key"], "/v1/embeddings")
    assert status == 429, data
    assert _worst(data["error"]["message"]) > Decimal("0.02")  # 200k tokens at 0.02 USD/1M
    small = {"model": "openai/text-embedding-3-small", "input": ["hello world"] * 4}
    status, _, _ = await _post(session, srv.url, small, made["key"], "/v1/embeddings")
    assert status == 200
    assert 0 < await _spent(session, srv.url, made["id"]) < Decimal("0.01")


def _tools(kb: int) -> list[dict[str, Any]]:
    desc = "Looks a record up by its identifier and returns every field of it. " * 15
    return [{"type": "function", "function": {"name": f"tool_{i}", "description": desc,
                                              "parameters": {"type": "object"}}}
            for i in range(kb)]


async def test_f4_tools_count_in_the_reservation_and_the_estimate(
        gw: tuple[ServerThread, str], session: aiohttp.ClientSession) -> None:
    srv, database = gw
    made = await _key(session, srv.url, budget="0.01CNY/day")
    body = {**chat_body(10), "tools": _tools(100)}  # ~100 KB of tools, ~20k tokens
    status, data, _ = await _post(session, srv.url, body, made["key"])
    assert status == 429, data  # 20k tokens at 1 CNY/1M > 0.01 CNY
    assert _worst(data["error"]["message"]) > Decimal("0.015")
    status, _, _ = await _post(session, srv.url, chat_body(10), made["key"])
    assert status == 200
    # when the vendor omits usage, the estimate counts the tools too
    quiet = {**chat_body(10, text="hi [[sandbox:no_usage]]"), "tools": _tools(100)}
    status, _, headers = await _post(session, srv.url, quiet, MASTER)
    assert status == 200 and headers["x-kanjia-usage"] == "estimated"
    rec = await _record(database, headers["x-kanjia-request-id"])
    assert rec["usage_estimated"] and rec["input_tokens"] > 15_000


# -- failover (F6) -------------------------------------------------------------------------


async def test_f6_failover_stays_within_the_keys_models(
        gw: tuple[ServerThread, str], session: aiohttp.ClientSession,
        sandbox: SandboxThread) -> None:
    srv, _ = gw
    made = await _key(session, srv.url, models=["openrouter/*"])
    async with session.post(sandbox.url + "/_sandbox/faults",
                            json={"vendor": "openrouter", "fault": "server_error"}) as r:
        assert r.status == 200
    try:
        status, data, headers = await _post(session, srv.url, chat_body(10, model="or-first"),
                                            made["key"])
        assert status >= 500, (status, data, dict(headers))  # never answered by siliconflow
        status, _, headers = await _post(session, srv.url, chat_body(10, model="or-first"),
                                         MASTER)
        assert status == 200 and headers["x-kanjia-vendor"] == "siliconflow"
    finally:
        async with session.delete(sandbox.url + "/_sandbox/faults") as r:
            assert r.status == 200
    other = await _post(session, srv.url, chat_body(10, model="siliconflow/Qwen/Qwen3-8B"),
                        made["key"])
    assert (other[0], other[1]["error"]["code"]) == (403, "model_not_allowed")


async def test_f6_the_reservation_covers_the_dearest_candidate(
        gw: tuple[ServerThread, str], session: aiohttp.ClientSession,
        sandbox: SandboxThread) -> None:
    """An ordered route that fell over to gpt-4o used to reserve at deepseek's price."""
    srv, _ = gw
    made = await _key(session, srv.url, budget="0.03CNY/day")
    body = chat_body(1000)
    status, _, _ = await _post(session, srv.url, body, made["key"])  # deepseek alone fits
    assert status == 200
    status, data, _ = await _post(session, srv.url, {**body, "model": "dear-fallback"},
                                  made["key"])
    assert status == 429
    assert _worst(data["error"]["message"]) > Decimal("0.06")  # 1000 tokens at 10 USD/1M


# -- revocation ----------------------------------------------------------------------------


async def test_a_revoked_key_stops_at_once_here_and_within_the_poll_elsewhere(
        gw: tuple[ServerThread, str], session: aiohttp.ClientSession) -> None:
    srv, database = gw
    here = await _key(session, srv.url)
    assert (await _post(session, srv.url, chat_body(5), here["key"]))[0] == 200
    status, _ = await admin(session, srv.url, "DELETE", f"/admin/keys/{here['id']}")
    assert status == 200
    assert (await _post(session, srv.url, chat_body(5), here["key"]))[0] == 401  # at once
    # revoked by another instance (or the CLI): the database poll brings it within 2 s
    there = await _key(session, srv.url)
    assert (await _post(session, srv.url, chat_body(5), there["key"]))[0] == 200
    db = open_database(database)
    await db.connect()
    try:
        await Registry(db).revoke_key(there["id"])
    finally:
        await db.close()
    revoked_at = time.monotonic()
    while (await _post(session, srv.url, chat_body(5), there["key"]))[0] == 200:
        assert time.monotonic() - revoked_at < 2.0 + 1.0, "still served after the bound"
        await asyncio.sleep(0.05)
    assert (await _post(session, srv.url, chat_body(5), there["key"]))[0] == 401


# -- deferred work -------------------------------------------------------------------------


async def test_deferred_requests_of_an_exhausted_key_are_refused(
        gw: tuple[ServerThread, str], session: aiohttp.ClientSession) -> None:
    srv, _ = gw
    made = await _key(session, srv.url, budget="0.0001CNY/day")
    body = chat_body(1000)
    status, data, _ = await _post(session, srv.url, body, made["key"],
                                  headers={"x-kanjia-defer": "until-offpeak"})
    assert (status, data["error"]["code"]) == (429, "budget_exceeded")
    status, data, headers = await _post(session, srv.url, chat_body(5), made["key"],
                                        headers={"x-kanjia-defer": "until-offpeak"})
    assert status in (200, 202), data
    if status == 202:
        assert headers["x-kanjia-deferred"] == "yes"
    assert await _spent(session, srv.url, made["id"]) <= Decimal("0.0001")
