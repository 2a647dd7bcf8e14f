"""Savings split by lever: each part of each request's saving credited once, adding up."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.reports.conftest import known_records, record, ts, write

from kanjia.catalog import Catalog, Usage, cost_of
from kanjia.cli.report import report
from kanjia.ledger.store import Database
from kanjia.reports import savings_report

AT = "2026-11-20T04:30:00"  # 12:30 Beijing: outside every time-of-day window


def _batch(catalog: Catalog) -> object:
    entry = catalog.get("openai", "gpt-4o-mini")
    assert entry is not None and entry.batch_factor is not None
    c = cost_of(Usage(400_000, 0, 0, 20_000, 0), entry,
                datetime.fromtimestamp(ts(AT), UTC), batch=True)
    return record(catalog, "openai/gpt-4o-mini", AT, input_tokens=400_000,
                  output_tokens=20_000, endpoint="batch", route="cheap-chat",
                  cost=c.amount, cost_reporting=c.amount, price_period=c.period_id)


async def test_levers_add_up_and_each_is_what_its_definition_says(db: Database,
                                                                  catalog: Catalog) -> None:
    cached = record(catalog, "deepseek/deepseek-chat", AT, input_tokens=1_000_000,
                    cached_tokens=900_000, output_tokens=1000, route="cheap-chat")
    hit = record(catalog, "qwen/qwen-plus", AT, input_tokens=0, output_tokens=0,
                 cache_hit=True, saved=Decimal("0.25"), cost=Decimal(0),
                 cost_reporting=Decimal(0), route="cheap-chat")
    await write(db, [*known_records(catalog), cached, _batch(catalog), hit])
    r = await savings_report(db, catalog, baseline="openai/gpt-4o", currency="CNY")
    split = r["lever_split"]
    levers = {k: Decimal(str(v["amount"])) for k, v in split["levers"].items()}
    assert sum(levers.values()) == pytest.approx(Decimal(str(split["saving"]["amount"])),
                                                 abs=Decimal("1e-9"))
    assert split["saving"]["amount"] == pytest.approx(
        split["baseline_list"]["amount"] - split["total"]["amount"])
    assert split["total"]["amount"] == pytest.approx(r["total"]["amount"])
    # prompt cache: 900k cached tokens at (input - cache price) of deepseek-chat then
    entry = catalog.get("deepseek", "deepseek-chat")
    assert entry is not None
    at = datetime.fromtimestamp(ts(AT), UTC)
    period = entry.price_at(at)
    assert period is not None and period.window_at(at) is None
    rates = period.rates_for(at, 1_000_000)
    assert levers["prompt_cache"] == pytest.approx((rates.input - rates.cached) * 900_000)
    # off-peak: the known 04:00 Beijing deepseek request, 1M in + 1M out at half price
    assert levers["off_peak"] == pytest.approx(Decimal(5))
    # batch: gpt-4o-mini through the batch API, half the standard price, in CNY
    mini = catalog.get("openai", "gpt-4o-mini")
    assert mini is not None
    std = cost_of(Usage(400_000, 0, 0, 20_000, 0), mini, at).amount
    assert levers["batch"] == pytest.approx(
        catalog.fx.convert(std / 2, "USD", "CNY", at.date()), rel=Decimal("1e-9"))
    assert levers["response_cache"] == pytest.approx(Decimal("0.25"))
    assert levers["unexplained"] == 0
    assert levers["routing"] > 0 and levers["direct"] > 0


@pytest.fixture()
async def ledger(db: Database, catalog: Catalog) -> Database:
    await write(db, [*known_records(catalog), _batch(catalog)])
    return db


def test_report_cli_prints_the_split(ledger: Database, tmp_path: Path) -> None:
    out = CliRunner().invoke(report, ["--db", str(tmp_path / "ledger.db"), "--baseline",
                                      "openai/gpt-4o", "--since", "2025-01-01"])
    assert out.exit_code == 0, out.output
    assert "by lever, against openai/gpt-4o at list price" in out.output
    assert "off peak:" in out.output and "batch:" in out.output


async def test_levers_add_up_on_postgresql(pg_db: Database, catalog: Catalog) -> None:
    hit = record(catalog, "qwen/qwen-plus", AT, input_tokens=0, output_tokens=0,
                 cache_hit=True, saved=Decimal("0.25"), cost=Decimal(0),
                 cost_reporting=Decimal(0))
    await write(pg_db, [*known_records(catalog), _batch(catalog), hit])
    split = (await savings_report(pg_db, catalog, baseline="openai/gpt-4o",
                                  currency="USD"))["lever_split"]
    levers = split["levers"]
    assert sum(v["amount"] for v in levers.values()) == pytest.approx(
        split["saving"]["amount"])
    assert levers["off_peak"]["amount"] > 0 and levers["batch"]["amount"] > 0
    assert levers["response_cache"]["amounts"]["CNY"] == pytest.approx(0.25)
    assert levers["routing"]["amount"] > 0 and levers["direct"]["amount"] > 0
