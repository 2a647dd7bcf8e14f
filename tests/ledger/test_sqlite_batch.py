"""The SQLite batch insert stores every value with its type and skips rows already there."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kanjia.ledger.store import migrate, open_database


async def test_batch_insert_keeps_types_and_ignores_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    db = open_database(str(path))
    await db.connect()
    await migrate(db)
    cols = [("request_id", "TEXT"), ("ts", "DOUBLE"), ("day", "TEXT"),
            ("endpoint", "TEXT"), ("requested_model", "TEXT"), ("route", "TEXT"),
            ("cost_nano", "BIGINT"), ("currency", "TEXT"), ("reporting_currency", "TEXT"),
            ("charge_currency", "TEXT"), ("status", "INTEGER"), ("attempts", "TEXT")]
    big = 9_000_000_000_000_000_000  # near the top of a signed 64-bit integer
    rows = [("r1", 1733140800.123456, "2024-12-02", "chat", "m", None, big, "CNY", "CNY",
             "CNY", 200, '["deepseek/deepseek-chat@a", "qwen/qwen-plus@b"]'),
            ("r2", 1.5, "2024-12-02", "chat", "模型 \"quoted\"\n", "r", 0, "USD", "CNY",
             "USD", 429, "[]")]
    assert await db.insert_ignore("usage_records", cols, "request_id", rows) == 2
    assert await db.insert_ignore("usage_records", cols, "request_id", rows[:1]) == 0
    await db.close()
    with sqlite3.connect(path) as conn:
        got = conn.execute("SELECT request_id, ts, requested_model, route, cost_nano, status, "
                           "attempts, typeof(cost_nano), typeof(ts), typeof(route) "
                           "FROM usage_records ORDER BY request_id").fetchall()
    assert got[0] == ("r1", 1733140800.123456, "m", None, big, 200,
                      '["deepseek/deepseek-chat@a", "qwen/qwen-plus@b"]',
                      "integer", "real", "null")
    assert got[1][:6] == ("r2", 1.5, "模型 \"quoted\"\n", "r", 0, 429)


async def test_large_batches_insert_every_new_row_once(tmp_path: Path) -> None:
    db = open_database(str(tmp_path / "l.db"))
    await db.connect()
    await migrate(db)
    cols = [("request_id", "TEXT"), ("ts", "DOUBLE"), ("day", "TEXT"), ("endpoint", "TEXT"),
            ("requested_model", "TEXT"), ("currency", "TEXT"), ("reporting_currency", "TEXT"),
            ("charge_currency", "TEXT"), ("status", "INTEGER")]
    rows = [(f"r{i}", float(i), "2024-12-02", "chat", "m", "CNY", "CNY", "CNY", 200)
            for i in range(333)]
    assert await db.insert_ignore("usage_records", cols, "request_id", rows[:200]) == 200
    # overlapping, with a duplicate inside the batch itself
    again = rows[150:] + rows[300:301]
    assert await db.insert_ignore("usage_records", cols, "request_id", again) == 133
    ((count, total),) = await db.fetch("SELECT COUNT(*), SUM(ts) FROM usage_records")
    assert (count, total) == (333, float(sum(range(333))))
    await db.close()


async def test_multi_row_inserts_keep_within_the_variable_limit(tmp_path: Path) -> None:
    """Large batches go in chunks of rows per statement, fewer under a low variable
    limit; small ones row by row; the count exact either way."""
    from kanjia.ledger.store._sqlite import SQLiteDatabase

    db = open_database(str(tmp_path / "l.db"))
    await db.connect()
    await migrate(db)
    assert isinstance(db, SQLiteDatabase)
    cols = [("request_id", "TEXT"), ("ts", "DOUBLE"), ("day", "TEXT"), ("endpoint", "TEXT"),
            ("requested_model", "TEXT"), ("currency", "TEXT"), ("reporting_currency", "TEXT"),
            ("charge_currency", "TEXT"), ("status", "INTEGER")]
    rows = [(f"r{i}", float(i), "2024-12-02", "chat", "m", "CNY", "CNY", "CNY", 200)
            for i in range(1200)]
    assert await db.insert_ignore("usage_records", cols, "request_id", rows[:517]) == 517
    assert await db.insert_ignore("usage_records", cols, "request_id", rows[510:530]) == 13
    await db._run(lambda: db._c().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 40))
    # 4 rows of 9 columns per statement at most now; overlapping the batches before
    assert await db.insert_ignore("usage_records", cols, "request_id", rows[400:]) == 1200 - 530
    ((count, total),) = await db.fetch("SELECT COUNT(*), SUM(ts) FROM usage_records")
    assert (count, total) == (1200, float(sum(range(1200))))
    await db.close()


def test_row_amounts_are_each_fields_own_nano_amount() -> None:
    """``row_of`` converts an amount equal to the cost once: every amount column is still
    exactly ``to_nano`` of its own field, whatever the mix of equal and different ones."""
    import random
    from decimal import Decimal

    from kanjia.ledger import to_nano
    from kanjia.ledger._rows import NAMES, row_from_json, row_of, row_to_json
    from kanjia.ledger.record import CallRecord

    rng = random.Random(5)
    amounts = [Decimal(0), Decimal("0.000631"), Decimal("0.0006310"), Decimal("1.5"),
               Decimal("-0.2"), Decimal("0.0000000005"), Decimal("0.0000000015")]
    col = {name: i for i, name in enumerate(NAMES)}
    for i in range(500):
        rec = CallRecord(request_id=f"r{i}", ts=1.7e9 + i, endpoint="chat", route=None,
                         requested_model="m", cost=rng.choice(amounts), currency="CNY",
                         cost_reporting=rng.choice(amounts), reporting_currency="USD",
                         saved=rng.choice(amounts), cache_hit=rng.random() < 0.5,
                         attempts=["a@default"] * rng.randrange(3))
        if rng.random() < 0.5:
            rec.charge = rng.choice([*amounts, rec.cost])
        row = row_of(rec, "2026-12-07")
        charge = rec.cost if rec.charge is None else rec.charge
        assert row[col["cost_nano"]] == to_nano(rec.cost)
        assert row[col["cost_reporting_nano"]] == to_nano(rec.cost_reporting)
        assert row[col["charge_nano"]] == to_nano(charge)
        assert row[col["saved_nano"]] == to_nano(rec.saved)
        assert row[col["cache_hit"]] == int(rec.cache_hit)
        assert row_from_json(row_to_json(row)) == row
