"""``spend_report`` and ``spend_by_day`` on a ledger with known rows (exact figures)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from tests.reports.conftest import known_records, write

from kanjia.catalog import Catalog
from kanjia.ledger.store import Database
from kanjia.reports import spend_by_day, spend_report

RATE = Decimal("7.30")            # CNY per USD from 2025-01-01
QWEN, DEEPSEEK, OPENAI_USD = Decimal("3.4"), Decimal("15"), Decimal("3.5")


def _f(value: Decimal) -> float:
    return float(value)


async def test_spend_by_vendor_exact(known: Database, catalog: Catalog) -> None:
    r = await spend_report(known, catalog, by="vendor", currency="CNY")
    assert r["kind"] == "spend" and r["currency"] == "CNY"
    rows = {x["vendor"]: x for x in r["rows"]}
    assert [x["vendor"] for x in r["rows"]] == ["openai", "deepseek", "qwen"]   # by amount
    assert rows["qwen"]["amount"] == pytest.approx(_f(QWEN))
    assert rows["deepseek"]["amount"] == pytest.approx(_f(DEEPSEEK))
    assert rows["openai"]["amount"] == pytest.approx(_f(OPENAI_USD * RATE))
    assert rows["openai"]["amounts"]["USD"] == pytest.approx(3.5)
    assert rows["qwen"]["amounts"]["USD"] == pytest.approx(_f(QWEN / RATE))
    assert rows["deepseek"]["requests"] == 3 and rows["deepseek"]["errors"] == 1
    assert rows["deepseek"]["latency_p50_ms"] == 200.0
    assert rows["deepseek"]["latency_mean_ms"] == pytest.approx(650 / 3, abs=1e-3)
    assert rows["qwen"]["latency_p50_ms"] == 200.0          # mean of the two middle values
    t = r["total"]
    assert t["amount"] == pytest.approx(_f(QWEN + DEEPSEEK + OPENAI_USD * RATE))   # 43.95
    assert t["currency"] == "CNY"
    assert t["amounts"]["USD"] == pytest.approx(_f((QWEN + DEEPSEEK) / RATE + OPENAI_USD))
    assert (t["requests"], t["errors"]) == (6, 1)
    assert t["input_tokens"] == 6_000_000 and t["output_tokens"] == 2_600_000
    assert t["tokens"] == 8_600_000
    assert t["latency_p50_ms"] == 175.0 and t["latency_mean_ms"] == 200.0


async def test_spend_in_usd_by_model_route_key_tenant(known: Database, catalog: Catalog) -> None:
    r = await spend_report(known, catalog, by="model", currency="usd")
    assert r["currency"] == "USD" and r["total"]["currency"] == "USD"
    assert {x["model"] for x in r["rows"]} == {"qwen/qwen-plus", "deepseek/deepseek-chat",
                                               "openai/gpt-4o"}
    gpt = next(x for x in r["rows"] if x["model"] == "openai/gpt-4o")
    assert gpt["amount"] == pytest.approx(3.5)
    routes = {x["route"]: x["requests"] for x in
              (await spend_report(known, catalog, by="route"))["rows"]}
    assert routes == {"cheap-chat": 2, "(none)": 4}
    tenants = {x["tenant"]: x["amount"] for x in
               (await spend_report(known, catalog, by="tenant"))["rows"]}
    assert tenants["acme"] == pytest.approx(3.4) and tenants["globex"] == pytest.approx(15)
    keys = {x["key"]: x for x in (await spend_report(known, catalog, by="key"))["rows"]}
    assert keys["k1"]["requests"] == 2 and keys["k1"]["name"] is None


async def test_spend_by_day_and_window(known: Database, catalog: Catalog) -> None:
    r = await spend_report(known, catalog, by="day")
    assert [x["day"] for x in r["rows"]] == ["2025-03-03", "2025-03-04"]
    one = await spend_report(known, catalog, since=date(2025, 3, 4), until=date(2025, 3, 5))
    assert one["total"]["requests"] == 2
    assert one["total"]["amount"] == pytest.approx(1.6)
    assert one["since"] == "2025-03-04" and one["until"] == "2025-03-05"
    series = await spend_by_day(known, catalog, by="vendor", currency="CNY")
    assert series["day"] == ["2025-03-03", "2025-03-04"]
    assert series["series"]["qwen"] == pytest.approx([1.8, 1.6])
    assert series["series"]["deepseek"] == pytest.approx([15.0, 0.0])
    assert series["total"]["amount"] == pytest.approx(r["total"]["amount"])


async def test_empty_ledger_and_bad_arguments(db: Database, catalog: Catalog) -> None:
    r = await spend_report(db, catalog)
    assert r["rows"] == [] and r["total"]["amount"] == 0 and r["total"]["requests"] == 0
    with pytest.raises(ValueError, match="by must be one of"):
        await spend_report(db, catalog, by="colour")
    with pytest.raises(ValueError, match="currency"):
        await spend_report(db, catalog, currency="EUR")
    with pytest.raises(ValueError, match="after"):
        await spend_report(db, catalog, since=date(2025, 3, 4), until=date(2025, 3, 1))


@pytest.mark.postgres
async def test_reports_on_postgresql_match_sqlite(known: Database, pg_db: Database,
                                                  catalog: Catalog) -> None:
    from kanjia.reports import reprice_report, savings_report

    await write(pg_db, known_records(catalog))
    for by in ("vendor", "day", "key", "lever"):
        lite = await spend_report(known, catalog, by=by)
        pg = await spend_report(pg_db, catalog, by=by)
        pt, lt = dict(pg["total"]), dict(lite["total"])
        assert pt.pop("amounts") == pytest.approx(lt.pop("amounts"))
        assert pt == pytest.approx(lt)
        assert [x[by] for x in pg["rows"]] == [x[by] for x in lite["rows"]]
        for a, b in zip(pg["rows"], lite["rows"], strict=True):
            assert a["amount"] == pytest.approx(b["amount"])
            assert a["latency_p50_ms"] == b["latency_p50_ms"]
    lite_s = await savings_report(known, catalog)
    pg_s = await savings_report(pg_db, catalog)
    assert pg_s["baseline_total"]["amount"] == pytest.approx(lite_s["baseline_total"]["amount"])
    assert [(x["lever"], x["requests"]) for x in pg_s["levers"]] == \
        [(x["lever"], x["requests"]) for x in lite_s["levers"]] == [("routing", 2), ("direct", 4)]
    lite_r = await reprice_report(known, catalog, at=date(2024, 4, 30))
    pg_r = await reprice_report(pg_db, catalog, at=date(2024, 4, 30))
    assert pg_r["total"]["amount"] == pytest.approx(lite_r["total"]["amount"])
    assert pg_r["substitutions"] == lite_r["substitutions"]
