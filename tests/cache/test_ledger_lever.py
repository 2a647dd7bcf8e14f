"""A cache hit in the ledger (SQLite and PostgreSQL): its columns survive the journal and
the store, and the savings report credits it to the ``response_cache`` lever."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from tests._services import PG_URL, pg_reachable, pg_url_for

from kanjia.catalog import load_catalog
from kanjia.ledger._rows import (
    COLUMNS,
    KEY,
    TABLE,
    row_from_json,
    row_of,
    row_to_json,
    to_record,
)
from kanjia.ledger.query import billed_usage
from kanjia.ledger.record import CallRecord
from kanjia.ledger.store import Database, migrate, open_database
from kanjia.reports import savings_report

CATALOG = load_catalog()
TS = 1_741_000_000.0  # 2025-03-03


def _rec(**kw: object) -> CallRecord:
    base: dict[str, object] = dict(
        request_id="kj-" + uuid.uuid4().hex[:24], ts=TS, endpoint="chat", route=None,
        requested_model="deepseek/deepseek-chat", vendor="deepseek", model="deepseek-chat",
        deployment="default", input_tokens=1_000_000, output_tokens=1_000_000,
        cost=Decimal(10), currency="CNY", cost_reporting=Decimal(10),
        reporting_currency="CNY", price_period="p")
    base.update(kw)
    return CallRecord(**base)  # type: ignore[arg-type]


def _hit(saved: str) -> CallRecord:
    return _rec(input_tokens=0, output_tokens=0, cost=Decimal(0), cost_reporting=Decimal(0),
                deployment=None, cache_hit=True, saved=Decimal(saved),
                price_period="response-cache")


def test_row_and_journal_round_trip() -> None:
    hit = _hit("1.25")
    back = to_record(row_from_json(row_to_json(row_of(hit))) or ())
    assert back.cache_hit and back.saved == Decimal("1.25") and back.cost == 0
    # a journal line from before the response cache existed still reads
    old = row_of(_rec())[:-2]
    assert row_from_json(row_to_json(old)) == row_of(_rec(request_id=old[0]))
    older = row_of(_rec())[:-3]
    assert row_from_json(row_to_json(older)) == row_of(_rec(request_id=older[0]))


async def _check(db: Database) -> None:
    await db.insert_ignore(TABLE, COLUMNS, KEY, [
        row_of(r) for r in (_rec(), _rec(route="cheap-chat"), _hit("10"), _hit("2.5"))])
    rows = await db.fetch("SELECT cache_hit, saved_nano FROM usage_records "
                          "WHERE cache_hit = 1 ORDER BY saved_nano")
    assert [tuple(r) for r in rows] == [(1, 2_500_000_000), (1, 10_000_000_000)]
    r = await savings_report(db, CATALOG, baseline="openai/gpt-4o", currency="CNY",
                             by="lever")
    levers = {x["lever"]: x for x in r["levers"]}
    assert set(levers) == {"routing", "direct", "response_cache"}
    cache = levers["response_cache"]
    assert cache["requests"] == 2 and cache["amount"] == 0
    assert cache["saving"]["amount"] == pytest.approx(12.5)
    assert r["saving"]["response_cache"]["amount"] == pytest.approx(12.5)
    # the total saving is the routing and direct savings plus what the cache saved, and
    # still baseline_total - total
    assert r["saving"]["amount"] == pytest.approx(
        sum(x["saving"]["amount"] for x in r["levers"]))
    assert r["saving"]["amount"] == pytest.approx(
        r["baseline_total"]["amount"] - r["total"]["amount"])
    by_model = await savings_report(db, CATALOG, baseline="openai/gpt-4o", currency="CNY")
    assert by_model["saving"]["amount"] == pytest.approx(r["saving"]["amount"])
    assert sum(x["saving"]["amount"] for x in by_model["rows"]) == pytest.approx(
        r["saving"]["amount"])
    # reconcile compares what the vendor billed: hits never reached it
    billed = await billed_usage(db, "deepseek", [(int(TS) - 10, int(TS) + 10)])
    assert sum(b.requests for b in billed) == 2
    row = {x["lever"]: x for x in r["rows"]}["response_cache"]
    assert row["requests"] == 2 and row["saving"]["amount"] == pytest.approx(12.5)


async def test_sqlite_ledger(tmp_path: Path) -> None:
    db = open_database(str(tmp_path / "ledger.db"))
    await db.connect()
    try:
        applied = await migrate(db)
        assert "m005_response_cache" in applied
        await _check(db)
    finally:
        await db.close()


@pytest.fixture()
async def pg_db() -> AsyncIterator[Database]:
    if not await pg_reachable():
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    schema = f"kj_rcache_{uuid.uuid4().hex[:10]}"
    db = open_database(pg_url_for(schema))
    await db.connect()
    yield db
    await db.close()
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def test_postgresql_ledger(pg_db: Database) -> None:
    # migrate up to the one before, then to the end: an existing ledger gains the columns
    await migrate(pg_db, upto="m004_cache_write_1h")
    assert await migrate(pg_db) == ["m005_response_cache"]
    await _check(pg_db)
