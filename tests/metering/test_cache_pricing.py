"""Prompt-cache pricing on every vendor kind, end to end: a client talks to the gateway,
the gateway to the vendor sandbox (which reports cached tokens in each vendor's own
fields when it has seen a prefix before), and the ledger record must cost exactly what
the catalog's cache, cache-write and input prices make of the vendor's counts.

The sandbox is shared by the session, so every prompt carries a fresh marker: the first
call of a test is a cache miss, the second a hit."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from tests.metering._gateway import MASTER

from kanjia.catalog import load_catalog
from kanjia.config import load_settings
from kanjia.ledger.store import open_database
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app

CATALOG = load_catalog()
EPHEMERAL = {"type": "ephemeral"}
_COLUMNS = ("vendor", "model", "ts", "input_tokens", "cached_tokens", "cache_write_tokens",
            "cache_write_1h_tokens", "output_tokens", "usage_estimated", "cost_nano",
            "currency", "status")


@pytest.fixture(scope="module")
def gw(sandbox: SandboxThread, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[tuple[ServerThread, str, str]]:
    root = tmp_path_factory.mktemp("cache-gw")
    database = str(root / "ledger.db")
    settings = load_settings(None, sandbox_url=sandbox.url, database=database,
                             server={"upstream_timeout_s": 5.0, "first_byte_timeout_s": 5.0})
    app = build_app(settings, env={"KANJIA_MASTER_KEY": MASTER,
                                   "KANJIA_JOURNAL_DIR": str(root / "journal"),
                                   "KANJIA_LEDGER_FLUSH_S": "0.05"})
    with ServerThread(app) as srv:
        yield srv, database, sandbox.url


async def _record(database: str, rid: str) -> dict[str, Any]:
    db = open_database(database)
    await db.connect()
    try:
        for _ in range(200):
            rows = await db.fetch(f"SELECT {', '.join(_COLUMNS)} FROM usage_records "
                                  "WHERE request_id = ?", (rid,))
            if rows:
                return dict(zip(_COLUMNS, rows[0], strict=True))
            await asyncio.sleep(0.05)  # the ledger writes in batches, off the request path
    finally:
        await db.close()
    raise AssertionError(f"{rid} never reached the ledger")


def _expected(rec: dict[str, Any]) -> tuple[Decimal, Decimal, Decimal]:
    """The record's cost by hand from the catalog: (cost, all-input price, cached part).

    Uncached prompt tokens at the input price, cache reads at the cache price, 5-minute
    writes at the cache-write price, 1-hour writes at the 1-hour price, output at the
    output price: the rates in force at the request's time (off-peak windows, tiers)."""
    entry = CATALOG.get(rec["vendor"], rec["model"])
    assert entry is not None
    at = datetime.fromtimestamp(rec["ts"], UTC)
    period = entry.price_at(at)
    assert period is not None
    rates = period.rates_for(at, rec["input_tokens"])
    window = period.window_at(at)
    # the rates are the catalog's per-1M prices, not defaults: a cache price exists
    source = window if window is not None else period
    assert source.cached_mtok is not None, f"{entry.key} has no cache price"
    assert rates.cached == source.cached_mtok / 1_000_000
    assert 0 < rates.cached < rates.input
    write, hour = rec["cache_write_tokens"], rec["cache_write_1h_tokens"]
    plain = rec["input_tokens"] - rec["cached_tokens"] - write
    hour_rate = rates.cache_write if rates.cache_write_1h is None else rates.cache_write_1h
    cached_part = rec["cached_tokens"] * rates.cached
    cost = (plain * rates.input + cached_part + (write - hour) * rates.cache_write
            + hour * hour_rate + rec["output_tokens"] * rates.output)
    full = rec["input_tokens"] * rates.input + rec["output_tokens"] * rates.output
    return cost, full, cached_part


def _nano(amount: Decimal) -> int:
    return int((amount * 10**9).to_integral_value())


async def _chat(session: aiohttp.ClientSession, url: str, body: dict[str, Any]
                ) -> tuple[str, dict[str, Any] | None, str]:
    """(request id, the usage the client saw, the response id)."""
    async with session.post(url + "/v1/chat/completions", json=body) as resp:
        text = await resp.text()
        assert resp.status == 200, text
        rid = resp.headers["x-kanjia-request-id"]
    if not body.get("stream"):
        data = json.loads(text)
        return rid, data.get("usage"), data["id"]
    chunks = [json.loads(line[6:]) for line in text.splitlines()
              if line.startswith("data: ") and line != "data: [DONE]"]
    usage = next((c["usage"] for c in reversed(chunks) if c.get("usage")), None)
    return rid, usage, chunks[0]["id"]


def _long_system(marker: str, words: int = 1500) -> str:
    return f"[{marker}] " + "You follow the house rules of the billing desk. " * (words // 9)


# vendor kind -> (model, the field(s) the vendor reports cached tokens in)
OPENAI_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "openai": ("gpt-4o", ("prompt_tokens_details", "cached_tokens")),
    "deepseek": ("deepseek-chat", ("prompt_cache_hit_tokens",)),
    "qwen": ("qwen-plus", ("prompt_tokens_details", "cached_tokens")),
    "zhipu": ("glm-4-plus", ("prompt_tokens_details", "cached_tokens")),
    "moonshot": ("kimi-k2-0711-preview", ("prompt_tokens_details", "cached_tokens")),
    "doubao": ("doubao-pro-32k", ("prompt_tokens_details", "cached_tokens")),
}


def _field(usage: dict[str, Any], path: tuple[str, ...]) -> int:
    value: Any = usage
    for key in path:
        value = value[key]
    return int(value)


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
@pytest.mark.parametrize("vendor", sorted(OPENAI_KINDS))
async def test_cache_hits_billed_at_the_cache_price(gw: tuple[ServerThread, str, str],
                                                    vendor: str, stream: bool) -> None:
    srv, database, _ = gw
    model, field = OPENAI_KINDS[vendor]
    system = _long_system(uuid.uuid4().hex)
    async with aiohttp.ClientSession() as s:
        calls = []
        for question in ("first question [[sandbox:tokens=12]]",
                         "second question [[sandbox:tokens=12]]"):
            body: dict[str, Any] = {
                "model": f"{vendor}/{model}",
                "messages": [{"role": "system", "content": system},
                             {"role": "user", "content": question}]}
            if stream:
                body |= {"stream": True, "stream_options": {"include_usage": True}}
            calls.append(await _chat(s, srv.url, body))
    (miss_id, _miss_usage, _), (hit_id, hit_usage, _) = calls
    miss, hit = await _record(database, miss_id), await _record(database, hit_id)
    assert miss["cached_tokens"] == 0 and not miss["usage_estimated"]
    assert hit["cached_tokens"] > 1000 and not hit["usage_estimated"]
    # the gateway passes the vendor's own usage through: its real field names
    assert hit_usage is not None and _field(hit_usage, field) == hit["cached_tokens"]
    for rec in (miss, hit):
        cost, full, cached_part = _expected(rec)
        assert rec["cost_nano"] == _nano(cost), (vendor, rec)
    cost, full, cached_part = _expected(hit)
    assert cached_part > 0 and cost < full  # a discount, never free, never full price


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
async def test_gemini_cached_content_billed_at_the_cache_price(
        gw: tuple[ServerThread, str, str], stream: bool) -> None:
    srv, database, sandbox_url = gw
    system = _long_system(uuid.uuid4().hex)
    async with aiohttp.ClientSession() as s:
        ids = []
        for question in ("one [[sandbox:tokens=9]]", "two [[sandbox:tokens=9]]"):
            body: dict[str, Any] = {"model": "gemini/gemini-2.5-flash",
                                    "messages": [{"role": "system", "content": system},
                                                 {"role": "user", "content": question}]}
            if stream:
                body |= {"stream": True, "stream_options": {"include_usage": True}}
            ids.append((await _chat(s, srv.url, body))[0])
        # the vendor's field, straight from the sandbox: usageMetadata.cachedContentTokenCount
        # (with the gateway's key: the sandbox's caches are per deployment)
        raw = {"systemInstruction": {"parts": [{"text": system}]},
               "contents": [{"role": "user", "parts": [{"text": "three"}]}]}
        async with s.post(f"{sandbox_url}/gemini/v1beta/models/gemini-2.5-flash:generateContent",
                          json=raw, headers={"x-goog-api-key": "sandbox-key"}) as resp:
            meta = (await resp.json())["usageMetadata"]
    assert meta["cachedContentTokenCount"] > 1000
    miss, hit = await _record(database, ids[0]), await _record(database, ids[1])
    assert miss["cached_tokens"] == 0 and hit["cached_tokens"] > 1000
    for rec in (miss, hit):
        cost, full, cached_part = _expected(rec)
        assert rec["cost_nano"] == _nano(cost)
    cost, full, cached_part = _expected(hit)
    assert cached_part > 0 and cost < full


async def _sandbox_saw(session: aiohttp.ClientSession, sandbox_url: str,
                       response_id: str) -> dict[str, Any]:
    message_id = response_id.removeprefix("chatcmpl-")
    async with session.get(sandbox_url + "/_sandbox/cache") as resp:
        log = (await resp.json())["requests"]
    (entry,) = [r for r in log if r["id"] == message_id]
    return dict(entry)


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
async def test_anthropic_cache_control_reaches_the_vendor_and_is_billed(
        gw: tuple[ServerThread, str, str], stream: bool) -> None:
    """A 1-hour cache_control on the system prompt and a 5-minute one on the last user
    part reach the upstream; writes bill at 2x and 1.25x input, reads at 0.1x."""
    srv, database, sandbox_url = gw
    system = _long_system(uuid.uuid4().hex)
    tail = "Here is the document to discuss. " * 250

    def body(question: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": "anthropic/claude-sonnet-4-20250514", "max_tokens": 64,
            "messages": [
                {"role": "system", "content": [
                    {"type": "text", "text": system,
                     "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
                {"role": "user", "content": [
                    {"type": "text", "text": tail, "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": question}]}],
            "tools": [{"type": "function", "function": {
                "name": "lookup", "description": "find a clause",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]}
        if stream:
            out |= {"stream": True, "stream_options": {"include_usage": True}}
        return out

    async with aiohttp.ClientSession() as s:
        first = await _chat(s, srv.url, body("first [[sandbox:tokens=7]]"))
        second = await _chat(s, srv.url, body("second [[sandbox:tokens=7]]"))
        saw = [await _sandbox_saw(s, sandbox_url, call[2]) for call in (first, second)]
    for entry in saw:
        assert entry["cache_control"] == [{"path": "system.0", "ttl": "1h"},
                                          {"path": "messages.0.content.0", "ttl": "5m"}]
    write, read = await _record(database, first[0]), await _record(database, second[0])
    assert write["cache_write_1h_tokens"] == saw[0]["write_1h"] > 1024
    assert write["cache_write_tokens"] == saw[0]["write_1h"] + saw[0]["write_5m"]
    assert saw[0]["write_5m"] > 1024 and write["cached_tokens"] == 0
    assert read["cached_tokens"] == saw[1]["read"] == write["cache_write_tokens"]
    assert read["cache_write_tokens"] == 0
    for rec in (write, read):
        assert not rec["usage_estimated"]
        cost, _full, _cached_part = _expected(rec)
        assert rec["cost_nano"] == _nano(cost)
    # Sonnet 4 in USD per 1M: input 3, 5-minute write 3.75, 1-hour write 6, read 0.3
    plain = write["input_tokens"] - write["cache_write_tokens"]
    by_hand = (Decimal(3) * plain + Decimal("3.75") * saw[0]["write_5m"]
               + Decimal(6) * saw[0]["write_1h"] + Decimal(15) * write["output_tokens"]) / 10**6
    assert write["cost_nano"] == _nano(by_hand) and write["currency"] == "USD"
    plain = read["input_tokens"] - read["cached_tokens"]
    by_hand = (Decimal(3) * plain + Decimal("0.3") * read["cached_tokens"]
               + Decimal(15) * read["output_tokens"]) / 10**6
    assert read["cost_nano"] == _nano(by_hand)
    # the client sees the split in OpenAI's shape
    usage = second[1]
    assert usage is not None
    assert usage["prompt_tokens_details"]["cached_tokens"] == read["cached_tokens"]
    assert first[1] is not None
    assert first[1]["prompt_tokens_details"]["cache_write_tokens"] == write["cache_write_tokens"]


async def test_anthropic_bad_cache_control_is_a_400(gw: tuple[ServerThread, str, str]) -> None:
    srv, _, _ = gw
    body = {"model": "anthropic/claude-sonnet-4-20250514", "max_tokens": 16,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "hi",
                 "cache_control": {"type": "ephemeral", "ttl": "2h"}}]}]}
    async with aiohttp.ClientSession() as s, \
            s.post(srv.url + "/v1/chat/completions", json=body) as resp:
        assert resp.status == 400
        err = (await resp.json())["error"]
    assert "ttl" in err["message"] and err["type"] == "invalid_request_error"


def test_journal_lines_from_before_the_one_hour_column_still_load() -> None:
    """A journal written by the previous release (no cache_write_1h_tokens) is replayed,
    not dropped as torn; a row of 1-hour writes round-trips."""
    from kanjia.ledger._rows import COLUMNS, row_from_json, row_of, row_to_json, to_record
    from kanjia.ledger.record import CallRecord

    rec = CallRecord(request_id="r1", ts=1.0, endpoint="chat", route=None,
                     requested_model="m", input_tokens=9000, cache_write_tokens=5000,
                     cache_write_1h_tokens=2000, cost=Decimal("0.01"))
    row = row_of(rec)
    assert len(row) == len(COLUMNS) and to_record(row).cache_write_1h_tokens == 2000
    assert row_from_json(row_to_json(row)) == row
    # the 1-hour column, then the response cache's two, were added after it
    legacy = json.dumps(list(row[:-3])).encode()
    assert row_from_json(legacy) == (*row[:-3], 0, 0, 0)
    assert row_from_json(json.dumps(list(row[:-4])).encode()) is None


async def test_usage_report_keeps_cache_reads_and_writes_apart(
        gw: tuple[ServerThread, str, str]) -> None:
    from kanjia.metering import usage_report

    srv, database, _ = gw
    system = _long_system(uuid.uuid4().hex)
    body = {"model": "anthropic/claude-haiku-4-5-20251001", "max_tokens": 32,
            "messages": [{"role": "system", "content": system, "cache_control": EPHEMERAL},
                         {"role": "user", "content": "q [[sandbox:tokens=4]]"}]}
    async with aiohttp.ClientSession() as s:
        ids = [(await _chat(s, srv.url, body))[0] for _ in range(2)]
    recs = [await _record(database, rid) for rid in ids]
    db = open_database(database)
    await db.connect()
    try:
        report = await usage_report(db, CATALOG.fx, by="model", currency="USD")
    finally:
        await db.close()
    (row,) = [r for r in report["rows"] if r["model"] == "anthropic/claude-haiku-4-5-20251001"]
    assert row["cache_write_tokens"] >= recs[0]["cache_write_tokens"] > 1024
    assert row["cached_tokens"] >= recs[1]["cached_tokens"] > 1024
