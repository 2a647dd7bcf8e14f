"""``kanjia report`` and ``kanjia breakeven`` on the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from tests.reports.conftest import known_records, write

from kanjia.catalog import Catalog
from kanjia.cli.main import cli
from kanjia.ledger.store import Database


@pytest.fixture()
async def ledger(tmp_path: Path, db: Database, catalog: Catalog) -> str:
    await write(db, known_records(catalog))
    return str(tmp_path / "ledger.db")


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def _json(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = _run(*args, "--json", env=env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1                                      # ONE JSON object
    out = json.loads(lines[0])
    assert isinstance(out, dict)
    return out


def _one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for needle in needles:
        assert needle in lines[0]


def test_report_json_shape(ledger: str) -> None:
    spend = _json("report", "--db", ledger, "--by", "vendor", "--currency", "USD")
    assert spend["total"]["currency"] == "USD"
    assert spend["total"]["amount"] == pytest.approx(spend["total"]["amounts"]["USD"])
    assert {"requests", "tokens", "errors", "latency_p50_ms"} <= set(spend["total"])
    savings = _json("report", "--db", ledger, "--baseline")
    assert savings["baseline"] == "openai/gpt-4o"
    assert {"amount", "currency"} <= set(savings["total"])
    assert {"amount", "currency"} <= set(savings["baseline_total"])
    assert {"amount", "currency", "share"} <= set(savings["saving"])
    assert savings["saving"]["amount"] == pytest.approx(255.35)
    other = _json("report", "--db", ledger, "--baseline", "deepseek/deepseek-chat")
    assert other["baseline"] == "deepseek/deepseek-chat"
    replay = _json("report", "--db", ledger, "--reprice-at", "2024-04-30")
    assert {"amount", "currency"} <= set(replay["total"])
    assert {"model", "used", "reason"} <= set(replay["substitutions"][0])
    assert set(replay) >= {"actual_total", "difference", "rows"}
    on = _json("report", "--db", ledger, "--reprice-on", "openai")
    assert on["mapping"]["openai/gpt-4o"] == "openai/gpt-4o"


def test_configured_baseline_and_env_db(ledger: str) -> None:
    out = _json("report", "--baseline", env={"KANJIA_DB": ledger,
                                             "KANJIA_BASELINE": "qwen/qwen-max"})
    assert out["baseline"] == "qwen/qwen-max"


def test_report_text(ledger: str) -> None:
    result = _run("report", "--db", ledger, "--reprice-at", "2024-04-30")
    assert result.exit_code == 0
    assert "deepseek/deepseek-chat -> qwen/qwen-plus" in result.stdout
    assert "TOTAL" in result.stdout
    saved = _run("report", "--db", ledger, "--baseline", "--by", "day")
    assert "saved 255.350000 CNY" in saved.stdout
    assert "routing (requests sent to a route): 2 requests, saved 87.850000 CNY" \
        in saved.stdout


@pytest.mark.parametrize("args", [
    ["report", "--html", "{tmp}/spend.html"],
    ["report", "--baseline", "--html", "{tmp}/savings.html"],
    ["report", "--reprice-at", "2024-04-30", "--html", "{tmp}/replay.html"],
])
def test_html_is_self_contained(ledger: str, tmp_path: Path, args: list[str]) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = _run(*args, "--db", ledger)
    assert result.exit_code == 0, result.output
    page = Path(args[-1]).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page
    assert "data:image/png;base64," in page
    for bad in ("http://", "https://", "//cdn", "<script", "<link"):
        assert bad not in page


@pytest.mark.parametrize(("args", "needles"), [
    (["report", "--since", "2025-13-01"], ["not a date"]),
    (["report", "--by", "colour"], ["colour"]),
    (["report", "--baseline", "openai/gpt-9"], ["not in the catalog"]),
    (["report", "--reprice-on", "nosuch"], ["unknown vendor"]),
    (["report", "--baseline", "--reprice-at", "2024-04-30"], ["choose one"]),
    (["report", "--since", "2025-03-05", "--until", "2025-03-01"], ["after"]),
    (["report", "--db", "{tmp}/missing.db"], ["no ledger"]),
])
def test_report_bad_input(ledger: str, tmp_path: Path, args: list[str],
                          needles: list[str]) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--db" not in args:
        args += ["--db", ledger]
    _one_line_error(_run(*args), *needles)


BE = ["breakeven", "--model", "moonshot/kimi-k2-0711-preview", "--gpu-hourly", "15CNY"]


def test_breakeven_json_and_chart(tmp_path: Path) -> None:
    chart = tmp_path / "be.png"
    out = _json(*BE, "--tokens-per-second", "2000", "--utilization", "0.5",
                "--tokens-per-day", "1e8", "--chart", str(chart), "--html",
                str(tmp_path / "be.html"))
    assert out["kind"] == "breakeven" and out["gpus_needed"] == 2
    assert {"amount", "currency"} <= set(out["total"])
    assert chart.read_bytes().startswith(b"\x89PNG")
    page = (tmp_path / "be.html").read_text(encoding="utf-8")
    assert "http" not in page and "data:image/png;base64," in page


def test_breakeven_traffic_from_ledger(ledger: str) -> None:
    out = _json("breakeven", "--model", "deepseek/deepseek-chat", "--gpu-hourly", "2USD",
                "--tokens-per-second", "500", "--traffic-from-ledger", "--db", ledger)
    # deepseek-chat: 4M tokens over 2 days; half of them prompt tokens
    assert out["traffic"]["tokens_per_day"] == pytest.approx(2e6)
    assert out["api"]["input_share"] == pytest.approx(0.5)
    assert "deepseek/deepseek-chat" in out["traffic"]["source"]


@pytest.mark.parametrize(("extra", "needles"), [
    (["--tokens-per-day", "1"], ["--tokens-per-second", "--measure"]),
    (["--tokens-per-second", "10"], ["--tokens-per-day", "--traffic-from-ledger"]),
    (["--tokens-per-second", "10", "--tokens-per-day", "1", "--chart", "x.svg"], ["PNG"]),
    (["--tokens-per-second", "0", "--tokens-per-day", "1"], ["tokens-per-second"]),
])
def test_breakeven_bad_input(extra: list[str], needles: list[str]) -> None:
    _one_line_error(_run(*BE, *extra), *needles)


def test_breakeven_refuses_closed_models_and_bad_amounts() -> None:
    _one_line_error(_run("breakeven", "--model", "openai/gpt-4o", "--gpu-hourly", "2USD",
                         "--tokens-per-second", "10", "--tokens-per-day", "1"),
                    "not open-weights")
    _one_line_error(_run(*BE[:-1], "2EUR", "--tokens-per-second", "10", "--tokens-per-day",
                         "1"), "CNY or USD")


def test_measure_failures_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import kanjia.local

    def broken(*, seconds: float = 20.0) -> None:
        raise RuntimeError("llama-server did not start\nsecond line")

    monkeypatch.setattr(kanjia.local, "measure", broken)
    _one_line_error(_run(*BE, "--measure", "--tokens-per-day", "1"),
                    "llama-server did not start", "pip install 'kanjia[local]'")
    monkeypatch.setitem(sys.modules, "kanjia.local", None)          # import fails
    _one_line_error(_run(*BE, "--measure", "--tokens-per-day", "1"), "kanjia[local]")


def test_measure_uses_the_measured_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import kanjia.local

    monkeypatch.setattr(kanjia.local, "measure", lambda *, seconds=20.0: SimpleNamespace(
        tokens_per_second=2000.0, model="smollm2-135m"))
    out = _json(*BE, "--measure", "--utilization", "0.5", "--tokens-per-day", "1e8")
    assert out["self_host"]["tokens_per_second"] == 2000.0
    assert out["self_host"]["measured_model"] == "smollm2-135m"


def test_real_entry_point_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "kanjia", "report", "--db",
                           str(tmp_path / "none.db")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no ledger" in proc.stderr
