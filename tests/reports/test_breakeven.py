"""``breakeven``: the arithmetic, the open-weights check, the amount parser, the chart."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kanjia.catalog import Catalog
from kanjia.reports import breakeven, breakeven_chart, parse_amount

AT = datetime(2026, 12, 1, tzinfo=UTC)
KIMI = "moonshot/kimi-k2-0711-preview"          # 4 / 16 CNY per 1M: 7 CNY blended (3:1)


def _run(catalog: Catalog, tokens_per_day: float, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(gpu_hourly=Decimal(15), gpu_currency="CNY",
                                   tokens_per_second=2000.0, utilization=0.5,
                                   tokens_per_day=tokens_per_day, currency="CNY", at=AT)
    args.update(kw)
    return breakeven(catalog, KIMI, **args)


def test_arithmetic(catalog: Catalog) -> None:
    # one GPU: 15 CNY/h = 360 CNY/day for 2000 tok/s x 50% x 86400 s = 86.4M tokens/day
    r = _run(catalog, 100e6)
    assert r["api"]["blended_mtok"] == pytest.approx(7.0)
    assert r["self_host"]["tokens_per_day_per_gpu"] == pytest.approx(86.4e6)
    assert r["self_host"]["cost_per_mtok_full_load"] == pytest.approx(360 / 86.4)
    assert r["gpus_needed"] == 2
    assert r["monthly"]["api"]["amount"] == pytest.approx(7e-6 * 100e6 * 30)      # 21,000
    assert r["monthly"]["self_host"]["amount"] == pytest.approx(2 * 360 * 30)     # 21,600
    assert r["monthly"]["cheaper"] == "api"
    # 360 / 7e-6 tokens/day fill under one GPU; with two GPUs (above 86.4M) the API is
    # cheaper again until 2 x 360 / 7e-6; from three GPUs on, self-hosting always wins
    assert r["breakeven_tokens_per_day"] == pytest.approx(360 / 7e-6)
    assert r["self_host_always_cheaper_above_tokens_per_day"] == pytest.approx(720 / 7e-6)
    assert r["total"]["amount"] == pytest.approx(21_000) and r["total"]["currency"] == "CNY"
    r2 = _run(catalog, 120e6)
    assert r2["monthly"]["cheaper"] == "self-host" and r2["gpus_needed"] == 2
    assert r2["monthly"]["self_host"]["amounts"]["USD"] == pytest.approx(21_600 / 7.25)


def test_never_breaks_even_when_a_full_gpu_costs_more_per_token(catalog: Catalog) -> None:
    r = _run(catalog, 1e6, tokens_per_second=1000.0)          # 8.33 CNY per 1M > 7
    assert r["breakeven_tokens_per_day"] is None
    assert r["self_host_always_cheaper_above_tokens_per_day"] is None
    assert r["gpus_needed"] == 1 and r["monthly"]["cheaper"] == "api"


def test_usd_gpu_price_and_token_mix(catalog: Catalog) -> None:
    r = _run(catalog, 0, gpu_hourly=Decimal("2"), gpu_currency="USD", input_share=1.0,
             cached_share=0.5)
    assert r["self_host"]["gpu_hourly"]["amount"] == pytest.approx(2 * 7.25)
    # half the input hits the cache on kimi-k2: 0.5 x 4 + 0.5 x 1 (cache hit) CNY per 1M
    assert r["api"]["blended_mtok"] == pytest.approx(2.5)
    assert r["monthly"]["api"]["amount"] == 0 and r["gpus_needed"] == 1


def test_closed_models_and_bad_input_are_refused(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="not open-weights"):
        breakeven(catalog, "openai/gpt-4o", gpu_hourly=Decimal(1), gpu_currency="USD",
                  tokens_per_second=100, tokens_per_day=1)
    with pytest.raises(ValueError, match="utilization"):
        _run(catalog, 1, utilization=1.5)
    with pytest.raises(ValueError, match="not in the catalog"):
        breakeven(catalog, "acme/none", gpu_hourly=Decimal(1), gpu_currency="USD",
                  tokens_per_second=100, tokens_per_day=1)


def test_self_hosted_entries_compare_with_the_same_model_hosted(catalog: Catalog) -> None:
    r = breakeven(catalog, "vllm/Qwen/Qwen2.5-7B-Instruct", gpu_hourly=Decimal(1),
                  gpu_currency="USD", tokens_per_second=100, tokens_per_day=1, at=AT)
    assert r["api_model"] == "siliconflow/Qwen/Qwen2.5-7B-Instruct"
    assert any("same model" in n for n in r["notes"])


@pytest.mark.parametrize(("text", "expected"), [
    ("2.5USD", (Decimal("2.5"), "USD")), ("15 cny", (Decimal(15), "CNY")),
    ("3", (Decimal(3), "CNY")), (".5USD", (Decimal("0.5"), "USD"))])
def test_parse_amount(text: str, expected: tuple[Decimal, str]) -> None:
    assert parse_amount(text, "CNY") == expected


@pytest.mark.parametrize("text", ["", "2.5EUR", "abc", "-1", "0USD"])
def test_parse_amount_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text, "CNY")


def test_chart_is_a_png(catalog: Catalog, tmp_path: Path) -> None:
    out = tmp_path / "be.png"
    data = breakeven_chart(_run(catalog, 100e6), out)
    assert data.startswith(b"\x89PNG") and out.read_bytes() == data
