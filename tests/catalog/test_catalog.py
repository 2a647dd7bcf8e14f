"""The packaged catalog: coverage, provenance, history, lookups, exchange rates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

import kanjia.catalog as catalog_pkg
from kanjia.catalog import Catalog, load_catalog

GATEWAY_VENDORS = {"deepseek", "qwen", "zhipu", "moonshot", "minimax", "doubao", "qianfan",
                   "hunyuan", "spark", "siliconflow", "openai", "openrouter", "anthropic",
                   "gemini", "vllm", "ollama", "llamacpp"}
REQUIRED_MODELS = [
    "deepseek/deepseek-chat", "deepseek/deepseek-reasoner", "qwen/qwen-max", "qwen/qwen-plus",
    "qwen/qwen-turbo", "qwen/qwen-long", "zhipu/glm-4-flash", "zhipu/glm-4-plus",
    "zhipu/glm-4-air", "zhipu/glm-4-long", "zhipu/glm-3-turbo", "zhipu/glm-4",
    "moonshot/moonshot-v1-8k", "moonshot/moonshot-v1-32k", "moonshot/moonshot-v1-128k",
    "moonshot/kimi-k2-0711-preview", "doubao/doubao-pro-32k", "doubao/doubao-lite-32k",
    "doubao/doubao-pro-128k", "doubao/doubao-lite-128k", "doubao/doubao-1.5-pro-32k",
    "qianfan/ernie-4.0-8k", "qianfan/ernie-4.0-turbo-8k", "qianfan/ernie-3.5-8k",
    "qianfan/ernie-speed-8k", "qianfan/ernie-lite-8k", "qianfan/ernie-speed-128k",
    "hunyuan/hunyuan-lite", "hunyuan/hunyuan-standard-256k", "spark/lite", "openai/gpt-4",
    "openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude-3-opus-20240229",
    "openai/text-embedding-3-small", "qwen/text-embedding-v3", "zhipu/embedding-3",
    "llamacpp/smollm2-135m",
]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text \
        else datetime.fromisoformat(text)


def test_public_api_is_sorted_and_complete() -> None:
    def isort_style(name: str) -> tuple[int, str]:  # constants, classes, functions (RUF022)
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert catalog_pkg.__all__ == sorted(catalog_pkg.__all__, key=isort_style)
    public = {n for n, v in vars(catalog_pkg).items()
              if not n.startswith("_") and not isinstance(v, type(catalog_pkg))}
    assert public == set(catalog_pkg.__all__)


def test_coverage_counts(catalog: Catalog) -> None:
    priced = [m for m in catalog.models if m.periods]
    assert len(priced) >= 60
    assert len({m.vendor for m in priced}) >= 12
    assert set(catalog.vendors) >= GATEWAY_VENDORS
    for key in REQUIRED_MODELS:
        vendor, model = key.split("/", 1)
        assert catalog.get(vendor, model) is not None, key


def test_every_price_has_provenance(catalog: Catalog) -> None:
    for m in catalog.models:
        for p in m.periods:
            assert len(p.source) > 3, m.key
            assert p.evidence in {"S", "S3", "M"}, m.key
            assert p.start_evidence in {None, "S", "S3", "M"}
            assert p.checked <= date(2026, 12, 31)
            assert p.currency in {"CNY", "USD"}


def test_vendor_regions(catalog: Catalog) -> None:
    assert catalog.vendors["deepseek"].region == "cn"
    assert catalog.vendors["openai"].region == "global"
    assert catalog.vendors["llamacpp"].region == "self-hosted"
    smol = catalog.get("llamacpp", "smollm2-135m")
    assert smol is not None and smol.open_weights and smol.params_b == 0.135
    assert smol.price_at(_at("2026-01-01T00:00")) is not None
    assert smol.price_at(_at("2026-01-01T00:00")).free  # type: ignore[union-attr]


def test_deepseek_chat_history(catalog: Catalog) -> None:
    chat = catalog.get("deepseek", "deepseek-chat")
    assert chat is not None
    assert len(chat.periods) >= 4
    ids = [p.id for p in chat.periods]
    assert ids[0] == "2024-05-06" and "2025-02-26" in ids
    v2 = chat.price_at(_at("2024-06-01T00:00"))
    assert v2 is not None and (v2.input_mtok, v2.output_mtok) == (Decimal(1), Decimal(2))
    v3 = chat.price_at(_at("2025-02-20T00:00"))
    assert v3 is not None
    expected = (Decimal(2), Decimal("0.5"), Decimal(8))
    assert (v3.input_mtok, v3.cached_mtok, v3.output_mtok) == expected
    assert chat.price_at(_at("2024-05-05T00:00")) is None     # before V2's launch


def test_qwen_long_may_2024_cut(catalog: Catalog) -> None:
    long = catalog.get("qwen", "qwen-long")
    assert long is not None
    before = long.price_at(_at("2024-05-20T12:00"))
    after = long.price_at(_at("2024-05-21T12:00"))
    assert before is not None and before.input_mtok == 20
    assert after is not None and after.input_mtok == Decimal("0.5")
    assert before.currency == after.currency == "CNY"


def test_price_war_free_models(catalog: Catalog) -> None:
    for key, day in [("qianfan/ernie-speed-8k", "2024-05-21"), ("qianfan/ernie-lite-8k",
                     "2024-05-21"), ("spark/lite", "2024-05-22"), ("hunyuan/hunyuan-lite",
                     "2024-05-22"), ("zhipu/glm-4-flash", "2024-08-27")]:
        vendor, model = key.split("/", 1)
        entry = catalog.get(vendor, model)
        assert entry is not None
        period = entry.price_at(_at(f"{day}T12:00"))
        assert period is not None and period.free, key


def test_not_found_prices_stay_blank(catalog: Catalog) -> None:
    for key in ["minimax/abab6.5s-chat", "spark/generalv3.5"]:
        vendor, model = key.split("/", 1)
        entry = catalog.get(vendor, model)
        assert entry is not None and entry.periods == ()
        assert entry.note is not None and "not guessed" in entry.note
    pro = catalog.get("spark", "generalv3")
    assert pro is not None and pro.periods[0].input_mtok == 36
    assert "xfyun.cn/doc/spark/Web.html" in pro.periods[0].source
    emb = catalog.get("zhipu", "embedding-3")       # priced from Zhipu's own model page
    assert emb is not None and emb.periods[0].input_mtok == Decimal("0.5")
    assert "docs.bigmodel.cn" in emb.periods[0].source


def test_lookup_by_alias_case_and_other_catalog_ids(catalog: Catalog) -> None:
    chat = catalog.get("deepseek", "deepseek-chat")
    assert catalog.get("deepseek", "DeepSeek-Chat") is chat
    assert catalog.get("deepseek", "deepseek-v3") is chat
    assert catalog.find("deepseek/deepseek-chat")[0] is chat
    assert chat in catalog.find("deepseek-chat")
    sonnet = catalog.find("claude-sonnet-4-5")
    assert [m.key for m in sonnet] == ["anthropic/claude-sonnet-4-5-20250929"]
    # the same bare id at two vendors
    keys = {m.key for m in catalog.find("Qwen/Qwen2.5-7B-Instruct")}
    assert keys == {"siliconflow/Qwen/Qwen2.5-7B-Instruct", "vllm/Qwen/Qwen2.5-7B-Instruct"}
    assert catalog.get("openrouter", "qwen/qwen-max") is not None
    assert catalog.find("no-such-model") == []


def test_period_boundaries_and_ends(catalog: Catalog) -> None:
    argon = catalog.get("gemini", "gemini-4-argon")
    assert argon is not None
    assert argon.price_at(_at("2026-11-30T23:59:59")).input_mtok == 2  # type: ignore[union-attr]
    assert argon.price_at(_at("2026-12-01T00:00")).input_mtok == 4  # type: ignore[union-attr]
    flash = catalog.get("deepseek", "deepseek-v4-flash")
    assert flash is not None
    cut = datetime.fromisoformat("2026-09-10T12:00:00+08:00")
    assert flash.price_at(cut).id == "2026-09-10T12:00"  # type: ignore[union-attr]
    assert flash.price_at(cut - timedelta(microseconds=1)).id == "2026-08-23"  # type: ignore[union-attr]


def test_fx_convert_and_overrides(catalog: Catalog) -> None:
    fx = catalog.fx
    assert fx.convert(Decimal(10), "CNY", "CNY", date(2025, 1, 1)) == 10
    rate = fx.cny_per_usd(date(2026, 6, 1))
    assert rate == Decimal("7.25")
    assert fx.convert(Decimal(1), "USD", "CNY", date(2026, 6, 1)) == Decimal("7.25")
    assert fx.convert(Decimal("7.25"), "CNY", "USD", date(2026, 6, 1)) == 1
    assert fx.cny_per_usd(date(2000, 1, 1)) == fx.rates[0].cny_per_usd
    other = load_catalog(fx_overrides={date(2026, 6, 1): Decimal("6.5")})
    assert other.fx.cny_per_usd(date(2026, 6, 2)) == Decimal("6.5")
    by_str = load_catalog(fx_overrides={"2026-06-01": Decimal("6.6")})
    assert by_str.fx.cny_per_usd(date(2026, 6, 2)) == Decimal("6.6")


def test_fx_rejects_unknown_currency_and_bad_override(catalog: Catalog) -> None:
    from kanjia.errors import ConfigError

    with pytest.raises(ConfigError, match="EUR"):
        catalog.fx.convert(Decimal(1), "EUR", "CNY", date(2025, 1, 1))
    with pytest.raises(ConfigError):
        load_catalog(fx_overrides={"not-a-date": Decimal(7)})
    with pytest.raises(ConfigError):
        load_catalog(fx_overrides={"2026-01-01": Decimal(-1)})


def test_families_are_unique_and_drawn_once(catalog: Catalog) -> None:
    families = [m.family for m in catalog.models if m.family]
    assert len(families) == len(set(families)) >= 20
