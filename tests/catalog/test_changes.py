"""`kanjia prices changes`: last month's traffic at the new prices, per model used."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.reports.conftest import record, write

from kanjia.catalog import Catalog, Override, load_catalog, write_overrides
from kanjia.cli.prices import prices
from kanjia.ledger.store import migrate, open_database


def _ledger(path: Path, catalog: Catalog) -> None:
    async def run() -> None:
        db = open_database(str(path))
        await db.connect()
        await migrate(db)
        await write(db, [
            record(catalog, "openai/gpt-4o", "2026-10-05T10:00:00",
                   input_tokens=1_000_000, output_tokens=100_000),
            record(catalog, "openai/gpt-4o", "2026-10-20T10:00:00",
                   input_tokens=1_000_000, output_tokens=100_000),
            record(catalog, "openai/gpt-4o-mini", "2026-10-21T10:00:00",
                   input_tokens=2_000_000, output_tokens=0),
            record(catalog, "openai/gpt-4o", "2026-11-02T10:00:00",    # outside the window
                   input_tokens=9_000_000, output_tokens=0)])
        await db.close()

    asyncio.run(run())


def test_a_price_cut_shows_what_the_traffic_would_have_cost(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = load_catalog()
    ledger = tmp_path / "ledger.db"
    _ledger(ledger, catalog)
    gpt = catalog.get("openai", "gpt-4o")
    assert gpt is not None
    old = gpt.price_at(datetime(2026, 10, 1, 12, tzinfo=UTC))
    assert old is not None and old.output_mtok is not None and old.currency == "USD"
    overrides = tmp_path / "price-overrides.toml"
    write_overrides(overrides, [Override(
        model="openai/gpt-4o", start=date(2026, 11, 15), currency="USD",
        input_mtok=old.input_mtok / 2, output_mtok=old.output_mtok / 2,
        source="test: a price cut", checked=date(2026, 11, 15), evidence="S")])
    monkeypatch.setenv("KANJIA_PRICE_OVERRIDES", str(overrides))
    result = CliRunner().invoke(prices, [
        "changes", "--db", str(ledger), "--since", "2026-10-01", "--until", "2026-11-01",
        "--at", "2026-11-20", "--currency", "USD", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    rows = {r["model"]: r for r in out["rows"]}
    assert set(rows) == {"openai/gpt-4o", "openai/gpt-4o-mini"}
    g = rows["openai/gpt-4o"]
    assert g["requests"] == 2 and g["changed"] is True
    assert Decimal(str(g["new_price"]["input_mtok"])) == old.input_mtok / 2
    expected = 2 * (old.input_mtok + old.output_mtok / 10)     # 1M in + 100k out, twice
    assert g["actual"] == pytest.approx(float(expected))
    assert g["at_new_prices"] == pytest.approx(float(expected / 2))
    assert g["difference"] == pytest.approx(-float(expected / 2))
    mini = rows["openai/gpt-4o-mini"]
    assert mini["changed"] is False and mini["difference"] == pytest.approx(0)
    assert out["difference"] == pytest.approx(-float(expected / 2))
    text = CliRunner().invoke(prices, [
        "changes", "--db", str(ledger), "--since", "2026-10-01", "--until", "2026-11-01",
        "--at", "2026-11-20", "--currency", "USD"], catch_exceptions=False).output
    assert "openai/gpt-4o: 2 requests" in text and "(changed)" in text


def test_changes_needs_a_ledger(tmp_path: Path) -> None:
    result = CliRunner().invoke(prices, ["changes", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "no ledger" in result.output
