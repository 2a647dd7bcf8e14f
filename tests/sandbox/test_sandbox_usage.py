"""The sandbox's usage export (OpenAI's organization usage/costs shapes, per vendor),
the skew control, and its own price list, checked against hand-computed bills and
against kanjia's independent ``cost_of``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sandbox_helpers import KEY, Client

from kanjia.catalog import Usage, cost_of, load_catalog
from kanjia.sandbox._prices import PriceList

DAY = 86400


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- the price list ----------------------------------------------------------------------
def test_price_list_by_hand() -> None:
    prices = PriceList()
    peak = prices.charge("deepseek", "deepseek-chat", _at("2025-03-03T04:00"),
                         1_000_000, 0, 0, 1_000_000)                  # 12:00 Beijing
    assert peak is not None and peak.currency == "CNY"
    assert peak.input + peak.output == Decimal(10)                    # 2 + 8 CNY per 1M
    night = prices.charge("deepseek", "deepseek-v3", _at("2025-03-03T20:00"),   # an alias
                          1_000_000, 0, 0, 1_000_000)                 # 04:00 Beijing: off-peak
    assert night is not None and night.input + night.output == Decimal(5)
    cached = prices.charge("deepseek", "deepseek-chat", _at("2025-03-03T04:00"),
                           1_000_000, 400_000, 0, 0)
    assert cached is not None
    assert (cached.input, cached.cached) == (Decimal("1.2"), Decimal("0.2"))  # never zero
    long = prices.charge("gemini", "gemini-1.5-pro", _at("2025-01-01T00:00"), 200_000, 0, 0, 0)
    short = prices.charge("gemini", "gemini-1.5-pro", _at("2025-01-01T00:00"), 100_000, 0, 0, 0)
    assert long is not None and short is not None
    assert (long.input, short.input) == (Decimal("0.5"), Decimal("0.125"))  # 2x over 128K
    assert prices.charge("deepseek", "deepseek-chat", _at("2024-01-01T00:00"), 1, 0, 0, 1) is None
    assert prices.charge("deepseek", "no-such-model", _at("2025-03-03T04:00"), 1, 0, 0, 1) is None


def test_price_list_agrees_with_kanjia_cost_of() -> None:
    """Two independent readings of the same price files bill every model alike, at
    every period start (and an hour into it, and at 03:00 local), cached tokens and
    cache writes included."""
    catalog = load_catalog()
    prices = PriceList()
    checked = 0
    for entry in catalog.models:
        instants = {_at("2026-12-06T12:00")}
        for p in entry.periods:
            if p.start is not None:
                instants |= {p.start, p.start + timedelta(hours=1),
                             p.start + timedelta(hours=19)}
        for at in sorted(instants):
            for usage in (Usage(3000, 1000, 500, 700), Usage(300_000, 0, 0, 10)):
                mine = prices.charge(entry.vendor, entry.model, at, usage.input_tokens,
                                     usage.cached_tokens, usage.cache_write_tokens,
                                     usage.output_tokens)
                theirs = cost_of(usage, entry, at)
                if not theirs.priced:
                    assert mine is None, (entry.key, at)
                    continue
                assert mine is not None, (entry.key, at)
                total = mine.input + mine.cached + mine.cache_write + mine.output
                assert (total, mine.currency) == (theirs.amount, theirs.currency), \
                    (entry.key, at, usage)
                checked += 1
    assert checked > 500
    assert prices.skipped == []


def test_price_list_skips_what_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "odd.toml").write_text(
        '[vendor]\ncurrency = "CNY"\nregion = "cn"\n'
        '[[models]]\nid = "fine"\n[[models.periods]]\nstart = 2025-01-01\n'
        'input_mtok = 1\noutput_mtok = 2\n'
        '[[models]]\nid = "odd"\n[[models.periods]]\nstart = "someday"\ninput_mtok = 1\n')
    (tmp_path / "broken.toml").write_text("[vendor\n")
    prices = PriceList(tmp_path)
    assert prices.skipped == ["broken.toml", "odd.toml: odd"]
    fine = prices.charge("odd", "fine", _at("2025-06-01T00:00"), 1_000_000, 0, 0, 0)
    assert fine is not None and fine.input == Decimal(1)
    assert prices.charge("odd", "odd", _at("2025-06-01T00:00"), 1, 0, 0, 0) is None


# -- the export ----------------------------------------------------------------------------
async def _get(client: Client, path: str, **query: Any) -> tuple[int, Any]:
    async with client.session.get(client.sandbox.url + path, params=query) as resp:
        return resp.status, await resp.json()


async def _ok(client: Client, path: str, **query: Any) -> Any:
    status, body = await _get(client, path, **query)
    assert status == 200, body
    return body


def _today() -> int:
    return int(time.time()) // DAY * DAY


async def test_usage_export_counts_what_was_served(client: Client) -> None:
    for text in ("one [[sandbox:tokens=20]]", "two [[sandbox:tokens=30]]"):
        reply = await client.chat("deepseek", {"model": "deepseek-chat",
                                               "messages": [{"role": "user", "content": text}]})
        assert reply.status == 200
    refused = await client.chat("deepseek", {"model": "deepseek-chat", "messages": [
        {"role": "user", "content": "no [[sandbox:fault=rate_limit]]"}]})
    assert refused.status == 429                                 # refused: not billed
    other = await client.chat("deepseek", {"model": "deepseek-reasoner", "messages": [
        {"role": "user", "content": "why [[sandbox:tokens=10]]"}]})
    assert other.status == 200
    emb = await client.post(client.sandbox.base_url("openai") + "/embeddings",
                            {"model": "text-embedding-3-small", "input": ["abcd" * 10]}, KEY)
    assert emb.status == 200

    page = await _ok(client, "/deepseek/organization/usage/completions",
                              start_time=_today(), group_by="model")
    assert page["object"] == "page" and page["has_more"] is False
    (bucket,) = page["data"]
    assert (bucket["object"], bucket["start_time"], bucket["end_time"]) == \
        ("bucket", _today(), _today() + DAY)
    by_model = {r["model"]: r for r in bucket["results"]}
    chat = by_model["deepseek-chat"]
    assert chat["object"] == "organization.usage.completions.result"
    assert (chat["num_model_requests"], chat["output_tokens"]) == (2, 50)
    assert chat["input_tokens"] > 0 and chat["input_cached_tokens"] == 0
    assert by_model["deepseek-reasoner"]["num_model_requests"] == 1
    page = await _ok(client, "/deepseek/organization/usage/completions",
                              start_time=_today())
    (total,) = page["data"][0]["results"]
    assert total["model"] is None and total["num_model_requests"] == 3
    page = await _ok(client, "/openai/organization/usage/embeddings",
                              start_time=_today(), **{"group_by[]": "model"})
    (result,) = page["data"][0]["results"]
    assert result["object"] == "organization.usage.embeddings.result"
    assert (result["model"], result["num_model_requests"], result["input_tokens"]) == \
        ("text-embedding-3-small", 1, 10)

    page = await _ok(client, "/deepseek/organization/costs", start_time=_today(),
                              group_by="line_item")
    lines = {r["line_item"]: r for r in page["data"][0]["results"]}
    assert {"deepseek-chat, input", "deepseek-chat, output", "deepseek-reasoner, output"} <= \
        set(lines)
    out = lines["deepseek-chat, output"]
    assert out["object"] == "organization.costs.result" and out["quantity"] == 50
    assert out["amount"]["currency"] == "cny" and out["amount"]["value"] > 0
    page = await _ok(client, "/deepseek/organization/costs", start_time=_today())
    (total_cost,) = page["data"][0]["results"]
    assert total_cost["line_item"] is None
    assert total_cost["amount"]["value"] == pytest.approx(
        sum(r["amount"]["value"] for r in lines.values()))


async def test_buckets_pages_and_bad_queries(client: Client) -> None:
    start = _today() - DAY
    page = await _ok(client, "/qwen/organization/usage/completions",
                              start_time=start + 123, bucket_width="1h", limit=3)
    assert page["has_more"] is True and len(page["data"]) == 3
    assert page["data"][0]["start_time"] == start                # rounded down to the width
    assert page["next_page"] == str(start + 3 * 3600)
    nxt = await _ok(client, "/qwen/organization/usage/completions",
                             start_time=start, bucket_width="1h", limit=3,
                             page=page["next_page"])
    assert nxt["data"][0]["start_time"] == start + 3 * 3600
    for path, query, param in (
            ("/qwen/organization/usage/completions", {}, "start_time"),
            ("/qwen/organization/usage/completions", {"start_time": "soon"}, "start_time"),
            ("/qwen/organization/usage/completions",
             {"start_time": start, "bucket_width": "1w"}, "bucket_width"),
            ("/qwen/organization/usage/completions",
             {"start_time": start, "limit": 0}, "limit"),
            ("/qwen/organization/usage/completions",
             {"start_time": start, "group_by": "colour"}, "group_by"),
            ("/qwen/organization/costs", {"start_time": start, "bucket_width": "1h"},
             "bucket_width"),
            ("/qwen/organization/costs", {"start_time": start, "end_time": start},
             "end_time")):
        status, body = await _get(client, path, **query)
        assert status == 400, (path, query)
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["param"] == param


async def test_skew_control(client: Client) -> None:
    reply = await client.chat("moonshot", {"model": "moonshot-v1-8k", "messages": [
        {"role": "user", "content": "hi [[sandbox:tokens=40]]"}]})
    assert reply.status == 200
    url = client.sandbox.url + "/_sandbox/usage/skew"
    for bad in ({"vendor": "nobody", "field": "output_tokens", "factor": 2},
                {"vendor": "moonshot", "field": "colour", "factor": 2},
                {"vendor": "moonshot", "field": "output_tokens", "factor": "x"},
                {"vendor": "moonshot", "field": "output_tokens"}):
        async with client.session.post(url, json=bad) as resp:
            assert resp.status == 400, bad
    async with client.session.post(url, json={"vendor": "moonshot", "model": "moonshot-v1-8k",
                                              "field": "output_tokens", "factor": 2,
                                              "add": 1}) as resp:
        assert resp.status == 200
    page = await _ok(client, "/moonshot/organization/usage/completions",
                              start_time=_today(), group_by="model")
    assert page["data"][0]["results"][0]["output_tokens"] == 81
    listed = await _ok(client, "/_sandbox/usage/skew")
    assert listed["skews"][0]["factor"] == 2
    async with client.session.delete(url) as resp:
        assert (await resp.json()) == {"cleared": 1}
    page = await _ok(client, "/moonshot/organization/usage/completions",
                              start_time=_today(), group_by="model")
    assert page["data"][0]["results"][0]["output_tokens"] == 40
    async with client.session.post(client.sandbox.url + "/_sandbox/reset") as resp:
        assert resp.status == 200
    page = await _ok(client, "/moonshot/organization/usage/completions",
                              start_time=_today())
    assert page["data"][0]["results"] == []


def test_usage_book_bills_each_request_at_its_own_rates() -> None:
    """Sums are kept per minute and tier bucket and priced at export: the same as
    pricing every request on its own, across a tier threshold and an off-peak edge."""
    from kanjia.sandbox._usage import UsageBook

    book = UsageBook()
    prices = book.prices
    requests = [("gemini", "gemini-2.5-pro", "2026-12-07T10:00:05", 100_000, 0, 500),
                ("gemini", "gemini-2.5-pro", "2026-12-07T10:00:30", 300_000, 50_000, 500),
                ("deepseek", "deepseek-chat", "2025-03-03T16:29:30", 1000, 100, 200),
                ("deepseek", "deepseek-chat", "2025-03-03T16:30:10", 1000, 100, 200)]
    expected: dict[str, Decimal] = {}
    for vendor, model, at, prompt, cached, out in requests:
        when = _at(at)
        book.record(vendor, "completions", model, prompt, cached, 0, out, at=when.timestamp())
        charge = prices.charge(vendor, model, when, prompt, cached, 0, out)
        assert charge is not None
        expected[vendor] = expected.get(vendor, Decimal(0)) + charge.input + charge.cached \
            + charge.output
    for vendor in ("gemini", "deepseek"):
        sums = book.select(vendor, ("completions",), 0, 2**40)
        total = sum((s.cost_input + s.cost_cached + s.cost_output for *_, s in sums),
                    Decimal(0))
        assert total == expected[vendor]
        assert len(sums) == 2                  # two tier buckets; two minutes


def test_official_sdk_reads_the_export() -> None:
    """The official openai SDK's admin client, pointed at a sandbox vendor, parses the
    export into its own typed usage and costs responses."""
    import openai

    from kanjia.sandbox import SandboxThread

    with SandboxThread() as sb, openai.OpenAI(base_url=sb.base_url("openai"), api_key="x",
                                             admin_api_key="sk-admin-x",
                                             max_retries=0) as sdk:
        sdk.chat.completions.create(model="gpt-4o", messages=[
            {"role": "user", "content": "hi [[sandbox:tokens=12]]"}])
        usage = sdk.admin.organization.usage.completions(start_time=_today(),
                                                         group_by=["model"])
        (result,) = usage.data[0].results
        assert result.object == "organization.usage.completions.result"
        assert (result.model, result.num_model_requests, result.output_tokens) == \
            ("gpt-4o", 1, 12)
        costs = sdk.admin.organization.usage.costs(start_time=_today(),
                                                   group_by=["line_item"])
        lines = {r.line_item: r for r in costs.data[0].results
                 if r.object == "organization.costs.result"}
        out = lines["gpt-4o, output"]
        assert out.amount is not None and out.amount.currency == "usd"
        assert out.amount.value == pytest.approx(12 * 10 / 1e6)     # 10 USD per 1M output
