"""``savings_report``: the known ledger sent entirely to a baseline model."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tests.reports.conftest import record, write

from kanjia.catalog import Catalog
from kanjia.ledger.store import Database
from kanjia.reports import savings_report

RATE = Decimal("7.30")
ACTUAL_CNY = Decimal("3.4") + Decimal("15") + Decimal("3.5") * RATE          # 43.95
# on gpt-4o (2.5 / 10 USD): 7.5 + 5 + 12.5 + 12.5 + 3.5 (itself) + 0 (the 429)
BASELINE_USD = Decimal("41")


async def test_savings_vs_gpt_4o_exact(known: Database, catalog: Catalog) -> None:
    r = await savings_report(known, catalog, baseline="openai/gpt-4o", currency="CNY")
    assert r["kind"] == "savings" and r["baseline"] == "openai/gpt-4o"
    assert r["total"]["amount"] == pytest.approx(float(ACTUAL_CNY))
    assert r["total"]["currency"] == "CNY" and r["total"]["requests"] == 6
    assert r["baseline_total"]["amount"] == pytest.approx(float(BASELINE_USD * RATE))
    assert r["baseline_total"]["amounts"]["USD"] == pytest.approx(41.0)
    saving = BASELINE_USD * RATE - ACTUAL_CNY
    assert r["saving"]["amount"] == pytest.approx(float(saving))            # 255.35 CNY
    assert r["saving"]["currency"] == "CNY"
    assert r["saving"]["share"] == pytest.approx(float(saving / (BASELINE_USD * RATE)),
                                                 abs=1e-6)
    rows = {x["model"]: x for x in r["rows"]}
    assert rows["qwen/qwen-plus"]["baseline"]["amounts"]["USD"] == pytest.approx(12.5)
    assert rows["deepseek/deepseek-chat"]["baseline"]["amounts"]["USD"] == pytest.approx(25)
    assert rows["deepseek/deepseek-chat"]["amount"] == pytest.approx(15)
    gpt = rows["openai/gpt-4o"]
    assert gpt["baseline"]["amount"] == pytest.approx(gpt["amount"])
    assert gpt["saving"]["amount"] == pytest.approx(0, abs=1e-12)
    assert r["notes"] == []


async def test_savings_in_usd_and_by_vendor(known: Database, catalog: Catalog) -> None:
    r = await savings_report(known, catalog, currency="USD", by="vendor")
    assert r["total"]["currency"] == "USD"
    assert r["baseline_total"]["amount"] == pytest.approx(41.0)
    assert {x["vendor"] for x in r["rows"]} == {"qwen", "deepseek", "openai"}


async def test_embeddings_and_unknown_models_save_nothing(db: Database,
                                                          catalog: Catalog) -> None:
    await write(db, [
        record(catalog, "openai/text-embedding-3-small", "2025-03-03T04:00:00",
               input_tokens=1_000_000, output_tokens=0, endpoint="embeddings"),
        record(catalog, "acme/secret-model", "2025-03-03T04:00:00"),
    ])
    r = await savings_report(db, catalog)
    assert r["total"]["amounts"]["USD"] == pytest.approx(0.02)
    assert r["baseline_total"]["amounts"]["USD"] == pytest.approx(0.02)
    assert r["saving"]["amount"] == pytest.approx(0, abs=1e-12)
    assert any("embeddings traffic" in n for n in r["notes"])
    assert any("acme/secret-model" in n and "not in the catalog" in n for n in r["notes"])


async def test_requests_before_the_baseline_existed(db: Database, catalog: Catalog) -> None:
    # gpt-4o's first price is from 2024-05-13 (5 / 15 USD): earlier requests use it
    await write(db, [record(catalog, "qwen/qwen-plus", "2024-04-30T04:00:00",
                            input_tokens=1_000_000, output_tokens=1_000_000)])
    r = await savings_report(db, catalog)
    assert r["baseline_total"]["amounts"]["USD"] == pytest.approx(20.0)
    assert r["total"]["amount"] == pytest.approx(40.0)             # 20 + 20 CNY then
    assert any("no price at their time" in n for n in r["notes"])


async def test_tiered_baseline_prices_each_prompt_by_its_length(db: Database,
                                                                catalog: Catalog) -> None:
    base = catalog.find("gemini/gemini-1.5-pro")[0]
    period = base.periods[0]
    tier = period.tiers[0]
    await write(db, [
        record(catalog, "qwen/qwen-plus", "2025-03-03T04:00:00", input_tokens=100_000,
               output_tokens=0),
        record(catalog, "qwen/qwen-plus", "2025-03-03T05:00:00", input_tokens=200_000,
               output_tokens=0)])
    r = await savings_report(db, catalog, baseline="gemini/gemini-1.5-pro", currency="USD")
    expected = (period.input_mtok * Decimal("0.1") + tier.input_mtok * Decimal("0.2"))
    assert tier.above_input_tokens == 128_000
    assert r["baseline_total"]["amount"] == pytest.approx(float(expected))


async def test_bad_baseline(db: Database, catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="not in the catalog"):
        await savings_report(db, catalog, baseline="openai/gpt-9")
    with pytest.raises(ValueError, match="ambiguous"):
        await savings_report(db, catalog, baseline="Qwen/Qwen2.5-7B-Instruct")


@pytest.mark.parametrize("by", ["model", "lever"])
async def test_savings_split_between_routing_and_direct_choices(known: Database,
                                                                catalog: Catalog,
                                                                by: str) -> None:
    """Routing is credited only with routed requests; named models are the client's."""
    r = await savings_report(known, catalog, baseline="openai/gpt-4o", currency="CNY", by=by)
    levers = {x["lever"]: x for x in r["levers"]}
    assert set(levers) == {"routing", "direct"}
    routed, direct = levers["routing"], levers["direct"]
    assert routed["requests"] == 2 and direct["requests"] == 4
    # the two qwen-plus requests went through cheap-chat: 3.4 CNY against 12.5 USD
    assert routed["amount"] == pytest.approx(3.4)
    assert routed["baseline"]["amounts"]["USD"] == pytest.approx(12.5)
    assert routed["saving"]["amount"] == pytest.approx(float(Decimal("12.5") * RATE -
                                                             Decimal("3.4")))
    assert direct["saving"]["amount"] == pytest.approx(
        float(Decimal("28.5") * RATE - (Decimal("15") + Decimal("3.5") * RATE)))
    assert routed["saving"]["amount"] + direct["saving"]["amount"] == pytest.approx(
        r["saving"]["amount"])
