"""The guarded sync: `kanjia catalog import --from FILE [--apply]` and the override file."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from kanjia.catalog import (
    Override,
    OverrideFile,
    load_catalog,
    plan_sync,
    read_overrides,
    read_price_file,
    write_overrides,
)
from kanjia.cli.catalog import catalog
from kanjia.errors import ConfigError

PER_TOKEN = Decimal("0.000001")


def _run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(catalog, args, catch_exceptions=False)
    return result.exit_code, result.output


def _litellm(tmp_path: Path, entries: dict[str, dict[str, object]]) -> Path:
    path = tmp_path / "model_prices_and_context_window.json"
    sample = {"sample_spec": {"input_cost_per_token": 0, "litellm_provider": "one of..."}}
    path.write_text(json.dumps({**sample, **entries}), encoding="utf-8")
    return path


def _usd(key: str) -> tuple[Decimal, Decimal]:
    vendor, model = key.split("/", 1)
    entry = load_catalog().get(vendor, model)
    assert entry is not None
    p = entry.price_at(datetime.now(UTC))
    assert p is not None and p.currency == "USD" and p.output_mtok is not None
    return p.input_mtok, p.output_mtok


def _cached(key: str) -> Decimal:
    vendor, model = key.split("/", 1)
    entry = load_catalog().get(vendor, model)
    assert entry is not None
    p = entry.price_at(datetime.now(UTC))
    assert p is not None and p.cached_mtok is not None
    return p.cached_mtok


def test_litellm_json_is_read_in_kanjias_units(tmp_path: Path) -> None:
    path = _litellm(tmp_path, {
        "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
                   "cache_read_input_token_cost": 1.25e-06, "max_input_tokens": 128000,
                   "litellm_provider": "openai", "mode": "chat"},
        "mistral/mistral-large-latest": {"input_cost_per_token": 2e-06,
                                         "output_cost_per_token": 6e-06,
                                         "litellm_provider": "mistral"},
        "dall-e-3": {"output_cost_per_image": 0.04, "litellm_provider": "openai"}})
    offers = {o.key: o for o in read_price_file(path)}
    assert set(offers) == {"openai/gpt-4o", "mistral/mistral-large-latest"}
    gpt = offers["openai/gpt-4o"]
    assert gpt.prices == {"input_mtok": Decimal("2.5"), "output_mtok": Decimal(10),
                          "cached_mtok": Decimal("1.25")}
    assert gpt.context_window == 128000 and gpt.currency == "USD"
    assert "gpt-4o" in gpt.source


@pytest.mark.parametrize("entry, field", [
    ({"input_cost_per_token": "lots", "output_cost_per_token": 1e-6,
      "litellm_provider": "openai"}, "input_cost_per_token"),
    ({"input_cost_per_token": -1e-6, "output_cost_per_token": 1e-6,
      "litellm_provider": "openai"}, "input_cost_per_token"),
    ({"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6,
      "max_input_tokens": "big", "litellm_provider": "openai"}, "max_input_tokens"),
    ("not an object", "(entry)"),
])
def test_a_bad_import_file_names_the_first_bad_entry(tmp_path: Path, entry: object,
                                                     field: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"gpt-4o": {"input_cost_per_token": 1e-6,
                                           "output_cost_per_token": 1e-6,
                                           "litellm_provider": "openai"},
                                "gpt-bad": entry, "gpt-later": "also bad"}),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"entry 'gpt-bad': field {field}")):
        read_price_file(path)
    overrides = tmp_path / "overrides.toml"
    code, out = _run(["import", "--from", str(path), "--apply", "--overrides", str(overrides)])
    assert code != 0 and "gpt-bad" in out and not overrides.exists()


def test_kanjias_own_toml_format_is_read(tmp_path: Path) -> None:
    path = tmp_path / "openai.toml"
    path.write_text('[vendor]\nname = "OpenAI"\nregion = "global"\ncurrency = "USD"\n'
                    'pricing_urls = ["https://openai.com/api/pricing/"]\n\n'
                    '[[models]]\nid = "gpt-4o"\ncapabilities = ["chat"]\n\n'
                    '[[models.periods]]\nstart = 2026-12-01\ninput_mtok = 2\n'
                    'output_mtok = 8\nsource = "https://openai.com/api/pricing/"\n'
                    'checked = 2026-12-01\nevidence = "S"\n', encoding="utf-8")
    [offer] = read_price_file(path)
    assert offer.key == "openai/gpt-4o" and offer.prices["input_mtok"] == 2
    path.write_text(path.read_text().replace("input_mtok = 2", "input_mtok = -2"))
    with pytest.raises(ConfigError, match=r"entry 'gpt-4o': field periods\.0\.input_mtok"):
        read_price_file(path)


def test_apply_accepts_decreases_and_holds_large_increases(tmp_path: Path) -> None:
    gpt_in, gpt_out = _usd("openai/gpt-4o")
    mini_in, mini_out = _usd("openai/gpt-4o-mini")
    path = _litellm(tmp_path, {
        # a decrease: applied
        "gpt-4o": {"input_cost_per_token": float(gpt_in / 2 * PER_TOKEN),
                   "output_cost_per_token": float(gpt_out / 2 * PER_TOKEN),
                   "cache_read_input_token_cost": float(
                       _cached("openai/gpt-4o") / 2 * PER_TOKEN),
                   "litellm_provider": "openai"},
        # a 50% increase: held for review
        "gpt-4o-mini": {"input_cost_per_token": float(mini_in * Decimal("1.5") * PER_TOKEN),
                        "output_cost_per_token": float(mini_out * PER_TOKEN),
                        "cache_read_input_token_cost": float(
                            _cached("openai/gpt-4o-mini") * PER_TOKEN),
                        "litellm_provider": "openai"},
        # a CNY-billed model priced in USD elsewhere: held (never converted silently)
        "deepseek/deepseek-chat": {"input_cost_per_token": 5e-07,
                                   "output_cost_per_token": 9e-07,
                                   "litellm_provider": "deepseek"}})
    overrides = tmp_path / "cfg" / "price-overrides.toml"
    code, out = _run(["import", "--from", str(path), "--overrides", str(overrides),
                      "--json"])
    plan = json.loads(out)
    assert code == 0 and not overrides.exists() and plan["written"] == 0   # no --apply
    assert [c["key"] for c in plan["accepted"]] == ["openai/gpt-4o"]
    held = {c["key"]: c["held"] for c in plan["held"]}
    assert "over the 10% limit" in held["openai/gpt-4o-mini"]
    assert "billed in CNY" in held["deepseek/deepseek-chat"]

    code, out = _run(["import", "--from", str(path), "--overrides", str(overrides),
                      "--apply"])
    assert code == 0 and "wrote 1 entries" in out
    written = read_overrides(overrides)
    [entry] = written.prices
    assert entry.model == "openai/gpt-4o" and entry.input_mtok == gpt_in / 2
    assert entry.cached_mtok == _cached("openai/gpt-4o") / 2
    assert entry.start == datetime.now(UTC).date() and "LiteLLM" in entry.source
    assert entry.note is not None and "was input" in entry.note

    # the catalog loads the override from its date on; kanjia's own data is untouched
    cat = load_catalog(overrides=overrides)
    gpt = cat.get("openai", "gpt-4o")
    assert gpt is not None
    now = datetime.now(UTC) + timedelta(hours=1)
    assert gpt.price_at(now).input_mtok == gpt_in / 2          # type: ignore[union-attr]
    before = gpt.price_at(now - timedelta(days=2))
    assert before is not None and before.input_mtok == gpt_in
    assert load_catalog().get("openai", "gpt-4o").price_at(now).input_mtok == gpt_in  # type: ignore[union-attr]

    # a higher limit lets the increase through
    code, out = _run(["import", "--from", str(path), "--overrides", str(overrides),
                      "--max-increase", "60", "--vendor", "openai", "--json"])
    plan = json.loads(out)
    assert [c["key"] for c in plan["accepted"]] == ["openai/gpt-4o-mini"]


def test_an_unknown_vendor_lists_the_known_ones(tmp_path: Path) -> None:
    code, out = _run(["import", "--vendor", "nosuch",
                      "--overrides", str(tmp_path / "o.toml")])
    assert code == 2 and "unknown vendor 'nosuch'" in out
    assert "deepseek" in out and "mistral" in out


def test_apply_needs_a_source(tmp_path: Path) -> None:
    code, out = _run(["import", "--apply", "--overrides", str(tmp_path / "o.toml")])
    assert code == 2 and "--from" in out


def _override(**kw: object) -> Override:
    base: dict[str, object] = dict(model="openai/gpt-4o", start=date(2030, 1, 1),
                                   currency="USD", input_mtok=Decimal(1),
                                   output_mtok=Decimal(2), source="https://openai.com/",
                                   checked=date(2029, 12, 1), evidence="S")
    base.update(kw)
    return Override.model_validate(base)


@pytest.mark.parametrize("text, message", [
    ('[[prices]]\nmodel = "openai/gpt-4o"\n', "prices[0] (openai/gpt-4o): field start"),
    ('[[prices]]\nmodel = "openai/gpt-4o"\nstart = 2030-01-01\ncurrency = "EUR"\n'
     'input_mtok = "1"\noutput_mtok = "2"\nsource = "x://y"\nchecked = 2030-01-01\n'
     'evidence = "S"\n', "field currency"),
    ('[[prices]]\nmodel = "no-vendor"\n', "prices[0] (no-vendor): field"),
    ('prices = 3\n', "prices must be a list"),
    ('[other]\n', "unknown key 'other'"),
    ('[[prices\n', "invalid TOML"),
])
def test_a_malformed_override_file_names_the_first_bad_entry(tmp_path: Path, text: str,
                                                             message: str) -> None:
    path = tmp_path / "o.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        load_catalog(overrides=path)
    code, out = _run(["import", "--overrides", str(path)])
    assert code == 2 and str(path) in out


def test_overrides_that_do_not_fit_change_nothing(tmp_path: Path) -> None:
    path = tmp_path / "o.toml"
    write_overrides(path, [_override()])
    good = path.read_text(encoding="utf-8")
    # a start before the model's last period: refused, naming the entry
    with pytest.raises(ConfigError, match=r"prices\[1\] \(openai/gpt-4o\): start 2020-01-01"):
        load_catalog(overrides=_copy(tmp_path, good, _override(start=date(2020, 1, 1))))
    with pytest.raises(ConfigError, match=r"unknown vendor 'nosuch'; known: .*deepseek"):
        load_catalog(overrides=_copy(tmp_path, good, _override(model="nosuch/m")))
    assert path.read_text(encoding="utf-8") == good


def _copy(tmp_path: Path, text: str, extra: Override) -> Path:
    path = tmp_path / f"copy-{len(list(tmp_path.iterdir()))}.toml"
    path.write_text(text, encoding="utf-8")
    write_overrides(path, [extra])
    return path


def test_overrides_price_a_model_the_catalog_does_not_know(tmp_path: Path) -> None:
    path = tmp_path / "o.toml"
    write_overrides(path, [_override(model="mistral/my-finetune", start=date(2026, 1, 1),
                                     capabilities=["chat", "tools"])])
    cat = load_catalog(overrides=path)
    entry = cat.get("mistral", "my-finetune")
    assert entry is not None and entry.capabilities == {"chat", "tools"}
    period = entry.price_at(datetime(2026, 6, 1, tzinfo=UTC))
    assert period is not None and period.input_mtok == 1 and period.source == \
        "https://openai.com/"
    assert read_overrides(tmp_path / "missing.toml") == OverrideFile()


def test_plan_skips_equal_prices() -> None:
    cat = load_catalog()
    from kanjia.catalog import Offer

    gpt_in, gpt_out = _usd("openai/gpt-4o")
    same = Offer("openai", "gpt-4o", "USD", {"input_mtok": gpt_in * Decimal("1.01"),
                                             "output_mtok": gpt_out}, None, "test")
    plan = plan_sync(cat, [same], Decimal("0.1"))
    assert plan.unchanged == 1 and not plan.accepted and not plan.held


def test_an_offer_without_our_cache_price_is_held() -> None:
    cat = load_catalog()
    from kanjia.catalog import Offer

    gpt_in, gpt_out = _usd("openai/gpt-4o")
    entry = cat.get("openai", "gpt-4o")
    assert entry is not None
    period = entry.price_at(datetime.now(UTC))
    assert period is not None and period.cached_mtok not in (None, period.input_mtok)
    cheaper = Offer("openai", "gpt-4o", "USD", {"input_mtok": gpt_in / 2,
                                                "output_mtok": gpt_out / 2}, None, "test")
    plan = plan_sync(cat, [cheaper], Decimal("0.1"))
    assert not plan.accepted and plan.held[0].held is not None
    assert "no cached price" in plan.held[0].held


def test_genai_prices_as_a_source_never_converts_a_cny_bill(tmp_path: Path) -> None:
    code, out = _run(["import", "--from", "genai-prices", "--overrides",
                      str(tmp_path / "o.toml"), "--json"])
    plan = json.loads(out)
    assert code == 0 and plan["unchanged"] > 0
    cat = load_catalog()
    for change in plan["accepted"]:
        vendor, model = change["key"].split("/", 1)
        entry = cat.get(vendor, model)
        assert entry is not None and change["currency"] == change["offer_currency"]
    held = {c["key"]: c for c in plan["held"]}
    assert "billed in CNY" in held["moonshot/moonshot-v1-8k"]["held"]
    assert held["moonshot/moonshot-v1-8k"]["offer_currency"] == "USD"
