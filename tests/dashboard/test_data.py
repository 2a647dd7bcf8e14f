"""What the dashboard's data says about the real traffic of ``_traffic.fill``, on SQLite
(the served gateway) and on PostgreSQL (a second gateway, when a server is reachable);
and the pieces that shape it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests._services import PG_URL, pg_reachable

from kanjia.dashboard import Period, collect_dashboard
from kanjia.dashboard._page import embed_json
from kanjia.dashboard._reports import bucket_for, bucket_of, fill_days

from ._longledger import first_day, write_ledger
from ._traffic import HOSTILE_MODEL, MASTER, Served, http, served_gateway


def _data(served: Served, query: str = "") -> dict[str, Any]:
    status, _, body = http("GET", served.url + "/ui/data.json" + query,
                           headers={"Authorization": f"Bearer {MASTER}"})
    assert status == 200, body
    return dict(json.loads(body))


def _check(data: dict[str, Any]) -> None:
    routes = {r["route"]: r for r in data["routes"]["routes"]}
    fb = routes["fallback-chat"]
    assert (fb["requests"], fb["first_try"], fb["after_fallback"], fb["failed"]) == (4, 1, 3, 0)
    assert fb["chosen"] == [{"model": "qwen/qwen-plus", "requests": 3},
                            {"model": "deepseek/deepseek-chat", "requests": 1}]
    assert {"cheap-chat", "cn-only", "long-doc", "code", "(direct)"} <= routes.keys()
    assert data["routes"]["outcomes"]["failed"] == 2
    assert {e["error_class"] for e in data["routes"]["error_classes"]} == {
        "insufficient_quota", "overloaded"}
    recent = data["routes"]["recent"]
    assert [r["status"] for r in recent[:2]] == [503, 402]  # newest first
    assert recent[2]["attempts"] == ["deepseek/deepseek-chat", "qwen/qwen-plus"]
    assert recent[2]["served_by"] == "qwen/qwen-plus"
    k = data["kpis"]
    # 3 forced here, 1 by the demo workload (cheap-chat after a 429)
    assert k["fallbacks"] == 4 and k["errors"] == 2 and k["requests"] >= 50
    assert k["spend"] > 0 and k["baseline_total"] > k["spend"] and k["saving"] > 0
    spend = data["spend"]
    assert spend["total"] == pytest.approx(k["spend"])
    stacked = sum(sum(s["values"]) for s in spend["by_vendor"])
    assert stacked == pytest.approx(spend["total"])
    assert sum(sum(s["values"]) for s in spend["by_model"]) == pytest.approx(spend["total"])
    assert len(spend["days"]) == 30 and all(len(s["values"]) == 30 for s in spend["by_vendor"])
    savings = data["savings"]
    assert savings["baseline"] == "openai/gpt-4o" and savings["rows"]
    assert savings["saving"] == pytest.approx(savings["baseline_total"] - savings["total"])
    budgets = {(b["label"], b["period"]): b for b in data["budgets"]}
    assert set(budgets) == {("key team-a", "day"), ("key team-a", "month"), ("key bot", "total")}
    day = budgets["key team-a", "day"]
    assert day["currency"] == "CNY" and 0 < day["spent"] < day["amount"]
    assert day["used"] == pytest.approx(day["spent"] / day["amount"], rel=1e-4)
    bot = budgets["key bot", "total"]
    assert bot["currency"] == "USD" and bot["spent"] > 0 and bot["resets"] is None
    keys = {k["name"]: k for k in data["keys"]}
    assert keys["team-a"]["requests"] == 7 and keys["bot"]["requests"] == 1
    vendors = {v["vendor"]: v for v in data["health"]["vendors"]}
    # three fallbacks plus the overloaded request tried twice: five failed deepseek attempts
    assert vendors["deepseek"]["failed_attempts"] == 5
    assert vendors["moonshot"]["failed_attempts"] == 1 and vendors["qwen"]["failed_attempts"] == 0
    prices = data["prices"]
    assert len(prices["series"]) >= 20 and all(s["points"] for s in prices["series"])
    assert any(s["free_from"] for s in prices["series"])
    assert prices["floor"] == (0.01 if data["meta"]["currency"] == "CNY" else 0.0015)


def test_served_data(served: Served) -> None:
    data = _data(served)
    _check(data)
    live = data["health"]["live"]
    states = {d["deployment"]: d["state"] for d in live["deployments"]}
    assert states["moonshot#sandbox"] == "disabled"
    assert live["deployments"][0]["deployment"] == "moonshot#sandbox"  # trouble first
    assert data["meta"]["live"] and data["meta"]["currency"] == "CNY"


def test_usd_and_windows(served: Served) -> None:
    cny, usd = _data(served), _data(served, "?currency=USD")
    assert usd["meta"]["currency"] == "USD" and 0 < usd["kpis"]["spend"] < cny["kpis"]["spend"]
    _check(usd)
    later = _data(served, "?since=2099-01-01")
    assert later["kpis"]["requests"] == 0 and later["spend"]["total"] == 0
    assert later["savings"]["rows"] == [] and later["routes"]["routes"] == []
    assert later["prices"]["series"]  # the catalog does not depend on the window
    short = _data(served, "?since=2026-01-01&until=2026-01-04")
    assert short["spend"]["days"] == ["2026-01-01", "2026-01-02", "2026-01-03"]


async def _drop(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture()
def pg_served(tmp_path: Path) -> Iterator[Served]:
    if not asyncio.run(pg_reachable()):
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    schema = f"kj_dash_{uuid.uuid4().hex[:10]}"
    sep = "&" if "?" in PG_URL else "?"
    try:
        with served_gateway(tmp_path, database=f"{PG_URL}{sep}schema={schema}") as s:
            yield s
    finally:
        asyncio.run(_drop(schema))


@pytest.mark.postgres
def test_postgres_ledger(pg_served: Served) -> None:
    _check(_data(pg_served))


async def test_collect_on_an_empty_ledger(tmp_path: Path) -> None:
    from kanjia.catalog import load_catalog
    from kanjia.ledger.store import migrate, open_database

    db = open_database(str(tmp_path / "empty.db"))
    await db.connect()
    try:
        await migrate(db)
        data = await collect_dashboard(db, load_catalog(), period=Period(date(2026, 1, 1)))
    finally:
        await db.close()
    assert data["kpis"]["requests"] == 0 and data["budgets"] == [] and data["keys"] == []
    assert data["health"] == {"vendors": [], "live": None}
    assert data["spend"]["by_vendor"] == [] and data["prices"]["series"]


def test_embedded_json_cannot_close_the_script() -> None:
    text = embed_json({"model": HOSTILE_MODEL + "</script><script>alert(1)</script>&<!--"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text)["model"].endswith("</script><script>alert(1)</script>&<!--")


def test_fill_days_folds_the_tail() -> None:
    report = {"day": ["2026-01-02", "2026-01-04"],
              "series": {f"m{i}": [float(10 - i), 1.0] for i in range(5)} | {"free": [0.0, 0.0]}}
    days = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
    out = fill_days(report, days, top=3)
    assert [s["name"] for s in out] == ["m0", "m1", "other (3)"]
    assert out[0]["values"] == [0.0, 10.0, 0.0, 1.0]
    assert out[2]["values"] == [0.0, 8.0 + 7.0 + 6.0, 0.0, 3.0]


def test_period() -> None:
    p = Period.recent(today=date(2026, 3, 2))
    assert p.since == date(2026, 2, 1) and p.until is None
    assert len(p.days(today=date(2026, 3, 2))) == 30
    clause, args = Period(date(2026, 1, 1), date(2026, 1, 3)).where()
    assert clause == "ts >= ? AND ts < ?" and args[1] - args[0] == 2 * 86400


def test_buckets() -> None:
    assert [bucket_for(n) for n in (1, 30, 90, 91, 366, 367, 1096)] == [
        "day", "day", "day", "week", "week", "month", "month"]
    assert bucket_of("2025-03-05", "day") == "2025-03-05"
    assert bucket_of("2025-03-05", "week") == "2025-03-03"  # a Wednesday: its Monday
    assert bucket_of("2025-03-03", "week") == "2025-03-03"
    assert bucket_of("2025-01-01", "week") == "2024-12-30"  # weeks cross years
    assert bucket_of("2025-03-31", "month") == "2025-03"


def test_fill_days_sums_per_bucket() -> None:
    report = {"day": ["2025-12-30", "2026-01-02", "2026-01-31", "2026-02-01"],
              "series": {"a": [1.0, 2.0, 4.0, 8.0], "b": [0.5, 0.0, 0.0, 0.25]}}
    out = fill_days(report, ["2025-12", "2026-01", "2026-02"], top=5, bucket="month")
    assert out == [{"name": "a", "values": [1.0, 6.0, 8.0]},
                   {"name": "b", "values": [0.5, 0.0, 0.25]}]
    weeks = fill_days(report, ["2025-12-29", "2026-01-26"], top=5, bucket="week")
    assert weeks[0]["values"] == [3.0, 12.0]  # Dec 30 and Jan 2 share a week


@pytest.fixture(scope="module")
def long_ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, date, int]:
    from kanjia.catalog import load_catalog

    today = datetime.now(UTC).date()
    path = str(tmp_path_factory.mktemp("long-ledger") / "ledger.db")
    n = asyncio.run(write_ledger(path, load_catalog(), today))
    return path, today, n


async def _collect(path: str, since: date, today: date, currency: str = "CNY"
                   ) -> dict[str, Any]:
    from kanjia.catalog import load_catalog
    from kanjia.ledger.store import open_database

    db = open_database(path)
    await db.connect()
    try:
        return await collect_dashboard(db, load_catalog(), period=Period(since),
                                       currency=currency)
    finally:
        await db.close()


async def test_three_years_are_months(long_ledger: tuple[str, date, int]) -> None:
    from kanjia.catalog import load_catalog
    from kanjia.reports import spend_by_day

    path, today, n = long_ledger
    data = await _collect(path, first_day(today), today)
    spend = data["spend"]
    assert spend["bucket"] == "month" and 36 <= len(spend["days"]) <= 38
    assert spend["days"][0] == first_day(today).isoformat()[:7]
    assert spend["days"][-1] == today.isoformat()[:7]
    assert spend["requests"] == n == data["kpis"]["requests"]
    # the same money as the report's days, only summed per month
    for view in ("by_vendor", "by_model"):
        assert all(len(s["values"]) == len(spend["days"]) for s in spend[view])
        assert sum(sum(s["values"]) for s in spend[view]) == pytest.approx(spend["total"])
    from kanjia.ledger.store import open_database
    db = open_database(path)
    await db.connect()
    try:
        daily = await spend_by_day(db, load_catalog(), since=first_day(today), by="vendor")
    finally:
        await db.close()
    qwen = next(s for s in spend["by_vendor"] if s["name"] == "qwen")
    month = spend["days"][5]
    assert qwen["values"][5] == pytest.approx(sum(
        v for d, v in zip(daily["day"], daily["series"]["qwen"], strict=True)
        if d.startswith(month)))
    assert len(embed_json(spend)) < 12_000  # a small payload, not a thousand days


async def test_half_a_year_is_weeks(long_ledger: tuple[str, date, int]) -> None:
    path, today, _ = long_ledger
    since = today - timedelta(days=180)
    spend = (await _collect(path, since, today))["spend"]
    assert spend["bucket"] == "week" and 26 <= len(spend["days"]) <= 27
    assert all(date.fromisoformat(d).weekday() == 0 for d in spend["days"])
    assert spend["days"][0] <= since.isoformat() < spend["days"][1]
    assert sum(sum(s["values"]) for s in spend["by_vendor"]) == pytest.approx(spend["total"])


def test_price_war_groups_and_cuts() -> None:
    from kanjia.catalog import FREE_FLOOR, all_series, load_catalog, price_cuts
    from kanjia.dashboard._prices import MAX_GROUPS, OTHER_GROUP, price_war

    catalog = load_catalog()
    today = date(2026, 12, 1)
    p = price_war(catalog, "CNY", today)
    groups = p["groups"]
    named = [g for g in groups if g["id"] != OTHER_GROUP]
    assert len(groups) <= MAX_GROUPS and len(named) >= 5
    colors = [g["color"] for g in groups]
    assert len(set(colors)) == len(colors)  # one distinct colour per group
    assert not any(g["hidden"] for g in named)
    by_id = {g["id"]: g for g in groups}
    for s in p["series"]:
        assert s["color"] == by_id[s["group"]]["color"]
        assert s["vendor"] in by_id[s["group"]]["vendors"]
    assert sum(g["lines"] for g in groups) == len(p["series"])
    vendors = {s["vendor"] for s in p["series"]}
    if len(vendors) > MAX_GROUPS:
        assert by_id[OTHER_GROUP]["hidden"]
    # the cut labels are the CLI chart's, at the same points
    cli = {s.model.key: price_cuts(s, FREE_FLOOR["CNY"])
           for s in all_series(catalog, (), "CNY", today)}
    for s in p["series"]:
        assert [(c["index"], c["text"]) for c in s["cuts"]] == cli[s["model"]]
        for c in s["cuts"]:
            assert c["at"] == s["points"][c["index"]][0]
    texts = [c["text"] for s in p["series"] for c in s["cuts"]]
    assert "free" in texts and any(t.startswith("−") and t.endswith("%") for t in texts)
    plus = next(s for s in p["series"] if s["model"] == "qwen/qwen-plus")
    assert [c["text"] for c in plus["cuts"]] == ["−70%", "−82%"]  # 20 → 6 → 1.1 CNY


def test_spend_title_names_the_bucket() -> None:
    from kanjia.dashboard._page import Assets, render_page

    def title(bucket: str) -> str:
        page = render_page({"spend": {"bucket": bucket}, "meta": {}}, Assets.load())
        start = page.index("id='panel-spend'><h2>") + len("id='panel-spend'><h2>")
        return page[start:page.index("</h2>", start)]

    assert title("day") == "Spend over time, per day"
    assert title("week") == "Spend over time, per week"
    assert title("month") == "Spend over time, per month"
