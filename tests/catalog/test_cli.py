"""The `kanjia prices`, `kanjia quote` and `kanjia catalog` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kanjia.cli.catalog import catalog
from kanjia.cli.prices import prices, quote


def _run(cmd: object, args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cmd, args, catch_exceptions=False)  # type: ignore[arg-type]
    return result.exit_code, result.output


def test_prices_json_shape() -> None:
    code, out = _run(prices, ["--json"])
    assert code == 0
    data = json.loads(out)
    assert isinstance(data, list) and len(data) >= 60
    assert len({m["vendor"] for m in data if m["periods"]}) >= 12
    for m in data:
        assert {"vendor", "model", "currency", "periods"} <= m.keys()
        for p in m["periods"]:
            assert {"start", "input_mtok", "output_mtok", "source", "evidence"} <= p.keys()
            assert p["source"] and p["evidence"] in ("S", "S3", "M")


def test_prices_table_filters_and_currency() -> None:
    code, out = _run(prices, ["--vendor", "qwen", "--at", "2024-06-01", "--sort", "input"])
    assert code == 0
    lines = out.splitlines()
    assert lines[2].startswith("qwen/qwen-long") and " 0.5 " in lines[2]
    code, out = _run(prices, ["--vendor", "deepseek", "--currency", "USD", "--json",
                              "--at", "2025-02-20"])
    chat = next(m for m in json.loads(out) if m["model"] == "deepseek-chat")
    assert chat["at"]["shown"]["currency"] == "USD"
    assert chat["at"]["input_mtok"] == 2.0
    code, out = _run(prices, ["--capability", "embeddings"])
    assert code == 0 and "text-embedding-3-small" in out and "gpt-4o" not in out


def test_history_deepseek_chat_and_qwen_long() -> None:
    code, out = _run(prices, ["history", "deepseek/deepseek-chat", "--json"])
    assert code == 0
    data = json.loads(out)
    assert data["key"] == "deepseek/deepseek-chat" and len(data["periods"]) >= 4
    code, out = _run(prices, ["history", "qwen-long"])
    assert code == 0 and "in 20" in out and "in 0.5" in out and "2024-05-21" in out


@pytest.mark.parametrize("args", [
    ["--at", "2024-13-01"], ["--currency", "EUR"], ["--vendor", "nosuch"],
    ["history", "no-such-model"], ["history", "Qwen/Qwen2.5-7B-Instruct"],
    ["chart", "--out", "x.gif"],
])
def test_bad_input_is_one_line_and_nonzero(args: list[str]) -> None:
    result = CliRunner().invoke(prices, args)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("Error:")


def test_chart_renders_png_and_html(tmp_path: Path) -> None:
    png = tmp_path / "war.png"
    code, out = _run(prices, ["chart", "--out", str(png)])
    assert code == 0 and "lines" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    page = tmp_path / "war.html"
    code, _ = _run(prices, ["chart", "--out", str(page), "--vendors", "deepseek,qwen",
                            "--currency", "USD"])
    assert code == 0 and "<svg" in page.read_text() and "Qwen-Long" in page.read_text()


def test_quote_json_and_workload(tmp_path: Path) -> None:
    code, out = _run(quote, ["--input-tokens", "2000", "--output-tokens", "500",
                             "--cached-share", "0.3", "--requests", "1000", "--json",
                             "--at", "2025-03-01"])
    assert code == 0
    data = json.loads(out)
    costs = [r["cost"] for r in data["rows"]]
    assert costs == sorted(costs) and data["currency"] == "CNY"
    assert all(r["requests"] == 1000 for r in data["rows"])
    work = tmp_path / "w.jsonl"
    work.write_text(json.dumps({"messages": [{"role": "user", "content": "大模型价格战"}],
                                "output_tokens": 100}) + "\n"
                    + json.dumps({"input_tokens": 5000, "cached_tokens": 4000,
                                  "output_tokens": 300, "count": 10}) + "\n", encoding="utf-8")
    code, out = _run(quote, ["--workload", str(work), "--json"])
    assert code == 0
    rows = json.loads(out)["rows"]
    assert rows and all(r["requests"] == 11 for r in rows)
    work.write_text('{"output_tokens": 3}\n', encoding="utf-8")
    result = CliRunner().invoke(quote, ["--workload", str(work)])
    assert result.exit_code == 2 and "w.jsonl:1" in result.output
    result = CliRunner().invoke(quote, ["--input-tokens", "10"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


def test_catalog_import_reports_disagreements(tmp_path: Path) -> None:
    litellm = tmp_path / "prices.json"
    litellm.write_text(json.dumps({
        "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
                   "max_input_tokens": 128000, "litellm_provider": "openai"},
        "deepseek/deepseek-chat": {"input_cost_per_token": 2.8e-07,
                                   "output_cost_per_token": 4.2e-07,
                                   "litellm_provider": "deepseek"},
        "gpt-4": {"input_cost_per_token": 3e-05, "output_cost_per_token": 9e-05},
    }), encoding="utf-8")
    code, out = _run(catalog, ["import", "--genai-prices", "--litellm", str(litellm), "--json"])
    assert code == 0
    comps = {c["catalog"]: c for c in json.loads(out)["comparisons"]}
    assert set(comps) == {"genai-prices", "litellm"}
    assert len(comps["genai-prices"]["matched"]) >= 40
    lite = comps["litellm"]
    assert "openai/gpt-4o" in lite["matched"]
    fields = {(d["key"], d["field"]) for d in lite["disagreements"]}
    assert ("openai/gpt-4", "output_mtok") in fields       # 90 there, 60 here
    assert ("openai/gpt-4o", "input_mtok") not in fields
    d = next(d for d in lite["disagreements"] if d["key"] == "openai/gpt-4")
    assert d["ours_usd"] == 60 and d["theirs_usd"] == 90
    code, out = _run(catalog, ["import"])
    assert code == 0 and "genai-prices" in out and "Nothing was changed" in out
    result = CliRunner().invoke(catalog, ["import", "--litellm", str(tmp_path / "none.json")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
