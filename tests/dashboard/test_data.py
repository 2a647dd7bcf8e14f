"""What the dashboard's data says about the real traffic of ``_traffic.fill``, on SQLite
(the served gateway) and on PostgreSQL (a second gateway, when a server is reachable);
and the pieces that shape it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from tests._services import PG_URL, pg_reachable

from kanjia.dashboard import Period, collect_dashboard
from kanjia.dashboard._page import embed_json
from kanjia.dashboard._reports import fill_days

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
    from kanjia.metering.store import migrate, open_database

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
