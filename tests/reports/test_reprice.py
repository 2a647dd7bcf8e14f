"""``reprice_report``: the known ledger at other dates' prices and on other vendors."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from tests.reports.conftest import record, write

from kanjia.catalog import Catalog
from kanjia.ledger.store import Database
from kanjia.reports import reprice_report

RATE = Decimal("7.30")


async def test_before_the_may_2024_cuts_costs_more(known: Database, catalog: Catalog) -> None:
    before = await reprice_report(known, catalog, at=date(2024, 4, 30))
    after = await reprice_report(known, catalog, at=date(2024, 6, 1))
    rows = {x["model"]: x for x in before["rows"]}
    qwen = rows["qwen/qwen-plus"]
    # qwen-plus before 2024-05-21: 20 / 20 CNY per 1M: 30 + 40 (vs 1.8 + 1.6 in 2025)
    assert qwen["amount"] == pytest.approx(70.0)
    assert qwen["actual"]["amount"] == pytest.approx(3.4)
    assert qwen["difference"]["amount"] == pytest.approx(66.6)
    assert qwen["difference"]["share"] == pytest.approx(66.6 / 3.4, abs=1e-6)
    # after the cut (4 / 12 CNY): 4 + 6 + 8
    assert {x["model"]: x for x in after["rows"]}["qwen/qwen-plus"]["amount"] == \
        pytest.approx(18.0)
    assert before["total"]["amount"] > after["total"]["amount"] > before["actual_total"]["amount"]
    assert before["actual_total"]["amount"] == pytest.approx(43.95)
    assert before["total"]["currency"] == "CNY"
    assert before["difference"]["amount"] == pytest.approx(
        before["total"]["amount"] - before["actual_total"]["amount"])


async def test_models_without_a_price_then_are_substituted_and_stated(
        known: Database, catalog: Catalog) -> None:
    r = await reprice_report(known, catalog, at=date(2024, 4, 30))
    subs = {s["model"]: s for s in r["substitutions"]}
    # deepseek-chat launched 2024-05-06, gpt-4o on 2024-05-13; qwen-plus had a price
    assert set(subs) == {"deepseek/deepseek-chat", "openai/gpt-4o"}
    ds = subs["deepseek/deepseek-chat"]
    assert ds["used"] == "qwen/qwen-plus"
    assert "had no price on 2024-04-30" in ds["reason"] and ds["requests"] == 3
    gpt = subs["openai/gpt-4o"]
    assert gpt["used"] == "openai/gpt-4-turbo" and "same vendor" in gpt["reason"]
    rows = {x["model"]: x for x in r["rows"]}
    # on qwen-plus at 20 / 20 CNY: 40 + 40 (+ 0 for the 429)
    assert rows["deepseek/deepseek-chat"]["amount"] == pytest.approx(80.0)
    # on gpt-4-turbo at 10 / 30 USD: 10 + 3 USD, at the request's day's rate
    assert rows["openai/gpt-4o"]["amount"] == pytest.approx(float(13 * RATE))
    assert rows["openai/gpt-4o"]["amounts"]["USD"] == pytest.approx(13.0)


async def test_off_peak_windows_follow_the_time_of_day(db: Database, catalog: Catalog) -> None:
    # 2025-03-03: 04:00 Beijing is off-peak (1 / 4 CNY), 12:00 is not (2 / 8)
    await write(db, [
        record(catalog, "qwen/qwen-plus", "2024-10-01T20:00:00", input_tokens=1_000_000,
               output_tokens=1_000_000),
        record(catalog, "qwen/qwen-plus", "2024-10-02T04:00:00", input_tokens=1_000_000,
               output_tokens=1_000_000)])
    r = await reprice_report(db, catalog, on_vendor="deepseek", at=date(2025, 3, 3))
    assert r["mapping"] == {"qwen/qwen-plus": "deepseek/deepseek-chat"}
    assert r["total"]["amount"] == pytest.approx(5.0 + 10.0)


async def test_reprice_on_a_vendor_states_the_mapping(known: Database, catalog: Catalog) -> None:
    r = await reprice_report(known, catalog, on_vendor="openai", currency="USD")
    assert r["on_vendor"] == "openai" and r["at"] is None
    assert r["mapping"]["openai/gpt-4o"] == "openai/gpt-4o"
    assert r["mapping"]["qwen/qwen-plus"].startswith("openai/")
    assert r["mapping"]["deepseek/deepseek-chat"].startswith("openai/")
    stated = {s["model"]: s for s in r["substitutions"]}
    assert set(stated) == {"qwen/qwen-plus", "deepseek/deepseek-chat"}
    assert all(s["reason"].startswith("on openai: ") for s in stated.values())
    rows = {x["model"]: x for x in r["rows"]}
    assert rows["openai/gpt-4o"]["amount"] == pytest.approx(3.5)
    assert rows["openai/gpt-4o"]["difference"]["amount"] == pytest.approx(0, abs=1e-12)
    used = catalog.find(r["mapping"]["qwen/qwen-plus"])[0]
    period = used.periods[-1]
    expected = period.input_mtok * 3 + (period.output_mtok or 0) * Decimal("0.5")
    assert rows["qwen/qwen-plus"]["amount"] == pytest.approx(float(expected))


async def test_same_model_elsewhere_is_preferred(db: Database, catalog: Catalog) -> None:
    await write(db, [record(catalog, "deepseek/deepseek-chat", "2026-03-01T00:00:00"),
                     record(catalog, "siliconflow/Qwen/Qwen2.5-7B-Instruct",
                            "2026-03-01T00:00:00")])
    r = await reprice_report(db, catalog, on_vendor="siliconflow")
    assert r["mapping"]["deepseek/deepseek-chat"] == "siliconflow/deepseek-ai/DeepSeek-V3"
    (sub,) = r["substitutions"]
    assert "the same model (deepseek-v3) at siliconflow" in sub["reason"]
    hosted = await reprice_report(db, catalog, on_vendor="vllm")
    assert hosted["mapping"]["siliconflow/Qwen/Qwen2.5-7B-Instruct"] == \
        "vllm/Qwen/Qwen2.5-7B-Instruct"


async def test_bad_reprice_arguments(db: Database, catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="needs a date"):
        await reprice_report(db, catalog)
    with pytest.raises(ValueError, match="unknown vendor"):
        await reprice_report(db, catalog, on_vendor="nosuchvendor")
