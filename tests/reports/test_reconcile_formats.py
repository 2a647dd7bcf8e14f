"""`kanjia reconcile` on files: each export format against a ledger with known rows,
time zones, model-name matching, what counts as billed, and a one-line error (exit
2) naming the expected field or column for every file in the wrong format."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from tests.reports.conftest import known_records, record, write

from kanjia.catalog import Catalog
from kanjia.cli.main import cli
from kanjia.cli.reconcile import _FORMATS
from kanjia.ledger.store import Database
from kanjia.reconcile import FORMATS, load_export, parse_map
from kanjia.reports import billed_usage

MAR3 = int(datetime(2025, 3, 3, tzinfo=UTC).timestamp())
DAY = 86400
CSV_MAP = "date=Date,model=Model,requests=Calls,input_tokens=Input,output_tokens=Output,cost=Amount"


@pytest.fixture()
async def ledger(tmp_path: Path, db: Database, catalog: Catalog) -> str:
    """The known records (deepseek-chat 10 CNY on 03-03 12:00 Beijing, 5 CNY on 03-04
    04:00 Beijing, a 429; qwen-plus; gpt-4o), plus a broken stream the vendor billed."""
    extra = record(catalog, "deepseek/deepseek-chat", "2025-03-04T02:00:00", input_tokens=100,
                   output_tokens=50, status=502, error_class="bad_gateway", stream=True)
    await write(db, [*known_records(catalog), extra])
    return str(tmp_path / "ledger.db")


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["reconcile", *args], catch_exceptions=False)


def _one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def _usage_page(buckets: list[tuple[int, int, list[dict[str, Any]]]]) -> dict[str, Any]:
    return {"object": "page", "has_more": False, "next_page": None, "data": [
        {"object": "bucket", "start_time": s, "end_time": e, "results": r}
        for s, e, r in buckets]}


def _completions(model: str, requests: int, inp: int, out: int, cached: int = 0
                 ) -> dict[str, Any]:
    return {"object": "organization.usage.completions.result", "model": model,
            "num_model_requests": requests, "input_tokens": inp, "output_tokens": out,
            "input_cached_tokens": cached, "project_id": None}


def _write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def test_format_lists_agree() -> None:
    assert _FORMATS == FORMATS


# -- CSV ---------------------------------------------------------------------------------
def _deepseek_csv(first_output: str = "1000000") -> str:
    # Beijing days: the 20:00 UTC request of 03-03 is 04:00 on 03-04 there, and the
    # broken stream (03-04 02:00 UTC) was billed too
    return ("Date,Model,Calls,Input,Output,Amount\n"
            f"2025-03-03,deepseek-chat,1,\"1,000,000\",{first_output},¥10.00\n"
            "2025/03/04 00:00:00,deepseek-chat,1,1000000,1000000,5.00\n"
            "2025-03-04,deepseek-chat,1,100,50,0.0006\n")


def test_csv_matches_in_the_vendors_time_zone(ledger: str, tmp_path: Path) -> None:
    path = _write(tmp_path, "bill.csv", _deepseek_csv())
    result = _run("--vendor", "deepseek", "--db", ledger, "--file", path, "--map", CSV_MAP,
                  "--json")
    out = json.loads(result.output)
    assert out["differences"] == [] and result.exit_code == 0
    (export,) = out["exports"]
    assert (export["tz"], export["first_day"], export["last_day"]) == \
        ("+08:00", "2025-03-03", "2025-03-04")
    assert export["currency"] == "CNY" and export["lines"] == 2
    # read as UTC days, the same bill disagrees on both days
    utc = json.loads(_run("--vendor", "deepseek", "--db", ledger, "--file", path, "--map",
                          CSV_MAP, "--tz", "UTC", "--json").output)
    assert {d["day"] for d in utc["differences"]} == {"2025-03-03", "2025-03-04"}


def test_csv_difference_is_listed(ledger: str, tmp_path: Path) -> None:
    path = _write(tmp_path, "bill.csv", _deepseek_csv(first_output="1200000"))
    result = _run("--vendor", "deepseek", "--db", ledger, "--file", path, "--map", CSV_MAP)
    assert result.exit_code == 1
    assert "1 difference beyond the tolerance" in result.output
    line = next(ln for ln in result.output.splitlines() if "output_tokens " in ln)
    assert "2025-03-03" in line and "1000000" in line and "1200000" in line
    assert "-200000" in line
    # within a 25% relative tolerance it matches
    assert _run("--vendor", "deepseek", "--db", ledger, "--file", path, "--map", CSV_MAP,
                "--tolerance", "25%").exit_code == 0


def test_csv_in_gb18030_with_chinese_headers(ledger: str, tmp_path: Path) -> None:
    text = ("日期,模型,调用次数,输入Tokens,输出Tokens,应付金额（元）\n"
            "2025年03月03日,deepseek-chat,1,1000000,1000000,10.00\n"
            "2025年03月04日,deepseek-chat,2,1000100,1000050,5.0006\n")
    path = _write(tmp_path, "账单.csv", text.encode("gb18030"))
    mapping = ("date=日期,model=模型,requests=调用次数,input_tokens=输入Tokens,"
               "output_tokens=输出Tokens,cost=应付金额（元）")
    result = _run("--vendor", "deepseek", "--db", ledger, "--file", path, "--map", mapping)
    assert result.exit_code == 0, result.output
    assert "no differences: 2 day/model lines match" in result.output


def test_csv_only_in_the_ledger_or_only_in_the_bill(ledger: str, tmp_path: Path) -> None:
    text = ("Date,Model,Amount\n2025-03-03,deepseek-chat,10\n2025-03-03,deepseek-coder,3\n"
            "2025-03-04,deepseek-chat,0\n")
    path = _write(tmp_path, "bill.csv", text)
    out = json.loads(_run("--vendor", "deepseek", "--db", ledger, "--file", path, "--map",
                          "date=Date,model=Model,cost=Amount", "--json").output)
    found = {(d["day"], d["model"]): d for d in out["differences"]}
    assert set(found) == {("2025-03-03", "deepseek-coder"), ("2025-03-04", "deepseek-chat")}
    assert found[("2025-03-03", "deepseek-coder")]["ledger"] == 0
    assert found[("2025-03-04", "deepseek-chat")]["vendor"] == 0
    assert found[("2025-03-04", "deepseek-chat")]["ledger"] == pytest.approx(5.0006, abs=1e-6)
    # --since/--until keep the days asked for
    only = json.loads(_run("--vendor", "deepseek", "--db", ledger, "--file", path, "--map",
                           "date=Date,model=Model,cost=Amount", "--json", "--since",
                           "2025-03-04").output)
    assert {d["day"] for d in only["differences"]} == {"2025-03-04"}


def test_csv_cost_in_another_currency_is_converted(ledger: str, tmp_path: Path,
                                                   catalog: Catalog) -> None:
    cny = catalog.fx.convert(__import__("decimal").Decimal("3.5"), "USD", "CNY",
                             datetime(2025, 3, 3).date())
    text = f"Date,Model,Amount,Currency\n2025-03-03,gpt-4o,{cny:.6f},CNY\n"
    path = _write(tmp_path, "bill.csv", text)
    result = _run("--vendor", "openai", "--db", ledger, "--file", path, "--map",
                  "date=Date,model=Model,cost=Amount,currency=Currency", "--tz", "UTC")
    assert result.exit_code == 0, result.output


# -- OpenAI usage and costs pages ----------------------------------------------------------
def test_openai_usage_with_snapshot_names_and_hourly_buckets(ledger: str,
                                                             tmp_path: Path) -> None:
    hour = 3600
    page = _usage_page([(MAR3 + h * hour, MAR3 + (h + 1) * hour,
                         [_completions("gpt-4o-2024-08-06", 1, 1_000_000, 100_000)]
                         if h == 10 else []) for h in range(24)])
    path = _write(tmp_path, "usage.json", page)
    out = json.loads(_run("--vendor", "openai", "--db", ledger, "--file", path,
                          "--json").output)
    assert out["differences"] == []
    (export,) = out["exports"]
    assert export["models_matched"] == {"gpt-4o-2024-08-06": "gpt-4o"}
    assert (export["periods"], export["first_day"]) == (1, "2025-03-03")
    assert export["fields"] == ["requests", "input_tokens", "cached_tokens", "output_tokens"]


def test_openai_pages_as_array_and_json_lines(ledger: str, tmp_path: Path) -> None:
    pages = [_usage_page([(MAR3, MAR3 + DAY, [_completions("gpt-4o", 1, 1_000_000, 100_000)])]),
             _usage_page([(MAR3 + DAY, MAR3 + 2 * DAY, [])])]
    array = _write(tmp_path, "pages.json", pages)
    lines = _write(tmp_path, "pages.jsonl", "\n".join(json.dumps(p) for p in pages))
    for path in (array, lines):
        result = _run("--vendor", "openai", "--db", ledger, "--file", path)
        assert result.exit_code == 0, result.output
        assert "2025-03-03 .. 2025-03-04" in result.output


def test_openai_costs_line_items(ledger: str, tmp_path: Path) -> None:
    results = [
        {"object": "organization.costs.result", "amount": {"value": 2.5, "currency": "usd"},
         "line_item": "gpt-4o-2024-08-06, input", "project_id": None},
        {"object": "organization.costs.result", "amount": {"value": "1.0", "currency": "usd"},
         "line_item": "gpt-4o-2024-08-06, output", "project_id": None},
        {"object": "organization.costs.result", "amount": {"value": 0.25, "currency": "usd"},
         "line_item": "web search tool calls", "project_id": None}]
    page = {"object": "page", "has_more": False, "data": [
        {"object": "bucket", "start_time": MAR3, "end_time": MAR3 + DAY, "results": results}]}
    path = _write(tmp_path, "costs.json", page)
    out = json.loads(_run("--vendor", "openai", "--db", ledger, "--file", path,
                          "--json").output)
    assert out["differences"] == []
    (export,) = out["exports"]
    assert export["currency"] == "USD" and export["format"] == "openai-costs"
    assert export["not_compared"] == [{"day": "2025-03-03", "line_item": "web search tool calls",
                                       "amount": 0.25}]
    results[1]["amount"] = {"value": 1.5, "currency": "usd"}
    path = _write(tmp_path, "costs.json", page)
    result = _run("--vendor", "openai", "--db", ledger, "--file", path, "--json")
    assert result.exit_code == 1
    (diff,) = json.loads(result.output)["differences"]
    assert (diff["model"], diff["field"], diff["currency"]) == ("gpt-4o", "cost", "USD")
    assert diff["ledger"] == pytest.approx(3.5) and diff["vendor"] == pytest.approx(4.0)


def test_only_billed_rows_count(ledger: str, tmp_path: Path) -> None:
    """The 429 (no tokens) is not billed; the broken stream (status 502, tokens) is."""
    page = _usage_page([(MAR3 + DAY, MAR3 + 2 * DAY,
                         [_completions("deepseek-chat", 1, 100, 50)])])
    path = _write(tmp_path, "usage.json", page)
    out = json.loads(_run("--vendor", "deepseek", "--db", ledger, "--file", path,
                          "--json").output)
    assert out["differences"] == []


async def test_billed_usage_periods(known: Database) -> None:
    spans = [(MAR3, MAR3 + DAY // 2), (MAR3 + DAY // 2, MAR3 + DAY), (MAR3 + 2 * DAY,
                                                                      MAR3 + 3 * DAY)]
    rows = await billed_usage(known, "deepseek", spans)
    by = {(r.period, r.model): r for r in rows}
    assert set(by) == {(0, "deepseek-chat"), (1, "deepseek-chat")}
    assert by[(0, "deepseek-chat")].cost_nano == 10 * 10**9
    assert by[(1, "deepseek-chat")].cost_nano == 5 * 10**9
    assert (by[(0, "deepseek-chat")].requests, by[(0, "deepseek-chat")].scope) == \
        (1, "completions")
    with pytest.raises(ValueError, match="disjoint"):
        await billed_usage(known, "deepseek", [(MAR3, MAR3 + DAY), (MAR3, MAR3 + DAY)])


async def test_billed_usage_on_postgres(pg_db: Database, catalog: Catalog) -> None:
    await write(pg_db, known_records(catalog))
    rows = await billed_usage(pg_db, "deepseek", [(MAR3, MAR3 + DAY), (MAR3 + DAY,
                                                                      MAR3 + 2 * DAY)])
    assert sorted((r.period, r.requests, r.cost_nano) for r in rows) == \
        [(0, 2, 15 * 10**9)]                 # the 429 on 03-04 is not billed


def test_bailian_billing_items(ledger: str, tmp_path: Path) -> None:
    at = int(datetime(2025, 3, 3, 4, tzinfo=UTC).timestamp())
    items = {"code": "200", "data": {"list": [
        {"summaryTime": at, "modelCode": "qwen-plus", "modelName": "通义千问-Plus",
         "payableAmount": 1.8, "values": json.dumps({"input_tokens": 1_000_000,
                                                     "output_tokens": 500_000})},
        {"summaryTime": at + DAY, "modelCode": "qwen-plus", "payableAmount": "1.60000000",
         "values": {"input_tokens": 2_000_000, "output_tokens": 0}}]}}
    path = _write(tmp_path, "bailian.json", items)
    result = _run("--vendor", "qwen", "--db", ledger, "--file", path, "--json")
    out = json.loads(result.output)
    assert result.exit_code == 0, out["differences"]
    (export,) = out["exports"]
    assert (export["format"], export["lines"], export["fields"]) == \
        ("bailian", 2, ["input_tokens", "output_tokens", "cost"])


# -- bad input: one line naming what was expected, exit 2 ---------------------------------
def test_wrong_formats_name_what_they_expected(ledger: str, tmp_path: Path) -> None:
    csv_file = _write(tmp_path, "bill.csv", _deepseek_csv())
    args = ["--vendor", "deepseek", "--db", ledger, "--file"]
    _one_line_error(_run(*args, csv_file), "--map date=COLUMN", "Date,Model")
    _one_line_error(_run(*args, csv_file, "--format", "openai-usage"), "not JSON",
                    "'data'")
    _one_line_error(_run(*args, csv_file, "--map", CSV_MAP.replace("Calls", "Requests")),
                    "expected column 'Requests'", "requests=Requests", "Calls")
    bad_date = _write(tmp_path, "d.csv", "Date,Model,Amount\nyesterday,deepseek-chat,1\n")
    _one_line_error(_run(*args, bad_date, "--map", "date=Date,model=Model,cost=Amount"),
                    "line 2", "'Date' is not a date")
    bad_number = _write(tmp_path, "n.csv", "Date,Model,Amount\n2025-03-03,deepseek-chat,ten\n")
    _one_line_error(_run(*args, bad_number, "--map", "date=Date,model=Model,cost=Amount"),
                    "'Amount' is not a number")
    no_model = _write(tmp_path, "u.json", _usage_page([(MAR3, MAR3 + DAY, [
        {"object": "organization.usage.completions.result", "num_model_requests": 1,
         "input_tokens": 1, "output_tokens": 1, "model": None}])]))
    _one_line_error(_run(*args, no_model), "expected field 'model'", "group_by=model")
    no_tokens = _write(tmp_path, "t.json", _usage_page([(MAR3, MAR3 + DAY, [
        {"object": "organization.usage.completions.result", "model": "deepseek-chat",
         "num_model_requests": 1, "input_tokens": 1}])]))
    _one_line_error(_run(*args, no_tokens), "expected field 'output_tokens'")
    no_start = _write(tmp_path, "s.json", {"object": "page", "data": [{"results": []}]})
    _one_line_error(_run(*args, no_start), "data[0]", "expected field 'start_time'")
    no_data = _write(tmp_path, "x.json", {"object": "list", "items": []})
    _one_line_error(_run(*args, no_data), "expected field 'data'")
    no_line_item = _write(tmp_path, "c.json", {"object": "page", "data": [
        {"object": "bucket", "start_time": MAR3, "end_time": MAR3 + DAY, "results": [
            {"object": "organization.costs.result", "amount": {"value": 1, "currency": "usd"},
             "line_item": None}]}]})
    _one_line_error(_run(*args, no_line_item), "expected field 'line_item'",
                    "group_by=line_item")
    no_amount = _write(tmp_path, "a.json", {"object": "page", "data": [
        {"object": "bucket", "start_time": MAR3, "end_time": MAR3 + DAY, "results": [
            {"object": "organization.costs.result", "line_item": "x, input"}]}]})
    _one_line_error(_run(*args, no_amount), "expected field 'amount.value'")
    usage = _write(tmp_path, "ok.json", _usage_page([(MAR3, MAR3 + DAY, [
        _completions("deepseek-chat", 1, 1, 1)])]))
    _one_line_error(_run(*args, usage, "--format", "openai-costs"),
                    "expected results with 'object': 'organization.costs.result'")
    _one_line_error(_run(*args, usage, "--format", "bailian"), "modelCode")
    twice = _write(tmp_path, "twice.json", [json.loads(Path(usage).read_text())] * 2)
    _one_line_error(_run(*args, twice), "page 1 data[0]", "the same bucket twice")
    empty = _write(tmp_path, "e.json", _usage_page([(MAR3, MAR3 + DAY, [])]))
    _one_line_error(_run(*args, empty), "--format openai-usage or openai-costs")
    _one_line_error(_run(*args, str(tmp_path / "missing.json")), "missing.json")
    _one_line_error(_run(*args, _write(tmp_path, "blank.csv", "")), "empty")


def test_bad_options_are_one_line(ledger: str, tmp_path: Path) -> None:
    path = _write(tmp_path, "bill.csv", _deepseek_csv())
    args = ["--vendor", "deepseek", "--db", ledger, "--file", path]
    _one_line_error(_run(*args, "--map", "day=Date"), "--map field 'day'")
    _one_line_error(_run(*args, "--map", "date=Date,model=Model"), "at least one of")
    _one_line_error(_run(*args, "--map", CSV_MAP, "--tz", "Mars/Base"), "--tz")
    _one_line_error(_run(*args, "--map", CSV_MAP, "--tolerance", "lots"), "--tolerance")
    _one_line_error(_run(*args, "--map", CSV_MAP, "--tolerance", "-1%"), "--tolerance")
    _one_line_error(_run(*args, "--map", CSV_MAP, "--format", "xml"), "--format")
    _one_line_error(_run(*args, "--map", CSV_MAP, "--cost-epsilon", "1%"), "--cost-epsilon")
    _one_line_error(_run("--vendor", "nobody", "--db", ledger, "--file", path, "--map",
                         CSV_MAP), "unknown vendor 'nobody'")
    _one_line_error(_run(*args[:2], "--db", str(tmp_path / "none.db"), "--file", path,
                         "--map", CSV_MAP), "no ledger")
    _one_line_error(_run(*args, "--map", CSV_MAP, "--since", "2025-03-04", "--until",
                         "2025-03-03"), "--until")


def test_load_export_api(tmp_path: Path) -> None:
    path = Path(_write(tmp_path, "bill.csv", _deepseek_csv()))
    export = load_export(path, mapping=parse_map(CSV_MAP), tz="Asia/Shanghai")
    assert export.format == "csv" and [p.label for p in export.periods] == \
        ["2025-03-03", "2025-03-04"]
    assert export.periods[0].start == int(datetime(2025, 3, 2, 16, tzinfo=UTC).timestamp())
