"""The rest of the market from genai-prices, behind kanjia's own data, and `prices check`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kanjia.catalog import Catalog, load_catalog
from kanjia.catalog._market_build import MARKET_FILE, build_market, market_json
from kanjia.cli.prices import prices
from kanjia.cli.prices_check import check_catalog


def test_the_market_file_is_what_build_market_writes() -> None:
    """Generated data is current: `kanjia catalog build-market` would write the same."""
    stored = json.loads(MARKET_FILE.read_text(encoding="utf-8"))
    fresh = build_market(load_catalog(market=False), date.fromisoformat(stored["checked"]))
    assert market_json(fresh) == MARKET_FILE.read_text(encoding="utf-8"), \
        "catalog/market/genai_prices.json is stale: run `kanjia catalog build-market`"


def test_at_least_600_priced_models_from_30_vendors(catalog: Catalog) -> None:
    now = datetime.now(UTC)
    priced = [m for m in catalog.every if m.price_at(now) is not None]
    assert len(priced) >= 600
    assert len({m.vendor for m in priced}) >= 30


def test_kanjias_own_data_wins_over_the_market(catalog: Catalog) -> None:
    own = catalog.get("deepseek", "deepseek-chat")
    assert own is not None and own.source_file.startswith("catalog/data/")
    assert all(m.key != own.key for m in catalog.market)
    # a bare name kanjia knows never resolves to a market model
    assert [m.key for m in catalog.find("gpt-4o")] == ["openai/gpt-4o"]
    assert [m.key for m in catalog.models] == [m.key for m in load_catalog(market=False).models]


def test_market_prices_carry_their_source(catalog: Catalog) -> None:
    stored = json.loads(MARKET_FILE.read_text(encoding="utf-8"))
    m = catalog.get("mistral", "mistral-large-latest") or next(
        m for m in catalog.market if m.vendor == "mistral")
    p = m.periods[-1]
    assert p.source.startswith(f"genai-prices {stored['version']} mistral/")
    assert "https://" in p.source and p.evidence == "S" and p.currency == "USD"
    assert p.checked == date.fromisoformat(stored["checked"])


def test_a_market_price_matches_genai_prices(catalog: Catalog) -> None:
    from genai_prices.data_snapshot import get_snapshot

    _, info = get_snapshot().find_provider_model("grok-3", None, "x-ai", None)
    entry = catalog.get("xai", info.id)
    assert entry is not None
    at = datetime.now(UTC)
    price = info.get_prices(at)
    period = entry.price_at(at)
    assert period is not None
    base = getattr(price.input_mtok, "base", price.input_mtok)
    assert period.input_mtok == base
    assert period.output_mtok == getattr(price.output_mtok, "base", price.output_mtok)


def test_market_tiers_are_cliff_tiers_like_ours(catalog: Catalog) -> None:
    tiered = [m for m in catalog.market if any(p.tiers for p in m.periods)]
    assert tiered
    p = next(p for p in tiered[0].periods if p.tiers)
    big = p.rates_for(datetime.now(UTC), p.tiers[0].above_input_tokens + 1)
    assert big.input == p.tiers[0].input_mtok.scaleb(-6)


def test_the_market_is_built_only_when_needed() -> None:
    cat = load_catalog()
    assert "market not loaded" in repr(cat)
    assert cat.get("deepseek", "deepseek-chat") is not None
    assert "market not loaded" in repr(cat)          # kanjia's own hit: no market build
    assert cat.get("xai", "grok-3") is not None
    assert "market not loaded" not in repr(cat)


def test_prices_json_lists_the_market() -> None:
    result = CliRunner().invoke(prices, ["--json"], catch_exceptions=False)
    data = json.loads(result.output)
    priced = [m for m in data if m["at"] is not None]
    assert len(priced) >= 600 and len({m["vendor"] for m in priced}) >= 30


def test_prices_check_lists_unpriced_and_stale(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*args: str) -> tuple[int, dict[str, Any]]:
        result = CliRunner().invoke(prices, ["check", "--json", *args],
                                    catch_exceptions=False)
        return result.exit_code, json.loads(result.output)

    for var in ("OPENAI_API_KEY", "MINIMAX_API_KEY", "ZHIPUAI_API_KEY", "ZHIPU_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    code, every = run("--all-vendors")
    assert code == (1 if every["failing"] else 0)
    assert set(every["failing"]) <= set(every["unpriced"]) | {s["key"] for s in every["stale"]}
    assert "minimax/abab6.5s-chat" in every["unpriced"]
    # a price checked long ago fails the age limit
    code, stale = run("--all-vendors", "--max-age", "1")
    assert code == 1 and stale["stale"]
    # enabled = what the gateway would enable: a vendor with its key set
    monkeypatch.setenv("MINIMAX_API_KEY", "test-key")
    code, report = run()
    assert "minimax" in report["enabled_vendors"]
    assert report["failing"] == ["minimax/abab6.5s-chat"] and code == 1
    config = tmp_path / "kanjia.toml"
    config.write_text("[vendors.minimax]\nenabled = false\n", encoding="utf-8")
    code, report = run("--config", str(config))
    assert "minimax" not in report["enabled_vendors"] and "minimax/abab6.5s-chat" not in \
        report["failing"]


def test_a_model_with_no_price_makes_check_fail(tmp_path: Path) -> None:
    (tmp_path / "openai.toml").write_text(
        '[vendor]\nname = "OpenAI"\nregion = "global"\ncurrency = "USD"\n'
        'pricing_urls = ["https://openai.com/api/pricing/"]\n\n'
        '[[models]]\nid = "gpt-unpriced"\ncapabilities = ["chat"]\n', encoding="utf-8")
    cat = load_catalog([tmp_path])
    now = datetime.now(UTC)
    unpriced, _, _, failing = check_catalog(cat, {"openai"}, 365, now)
    assert "openai/gpt-unpriced" in unpriced and "openai/gpt-unpriced" in failing
    _, _, _, failing = check_catalog(cat, {"qwen"}, 365, now)
    assert "openai/gpt-unpriced" not in failing       # vendor not enabled


def test_genai_prices_disagreements_are_explained(catalog: Catalog) -> None:
    """Fewer than 5 values differ from genai-prices without evidence for ours in the data."""
    from kanjia.catalog import compare_genai_prices

    comparison = compare_genai_prices(catalog)
    unexplained = [(d.key, d.field) for d in comparison.disagreements if not d.explained]
    assert len(unexplained) < 5, unexplained
    for d in comparison.disagreements:
        if d.explained:
            assert "https://" in d.explained and "2026-" in d.explained


def test_data_cites_no_document_outside_the_repository() -> None:
    """Catalog data cites primary sources, not documents outside the repository."""
    data = Path(__file__).parents[2] / "src" / "kanjia" / "catalog" / "data"
    for path in data.glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        assert "price-war.md" not in text and "shared/reference" not in text, path.name
