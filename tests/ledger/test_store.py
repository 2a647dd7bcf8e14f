"""The schema: ordered migrations from empty and from the previous schema, on both databases."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.ledger._records import make_record

from kanjia.ledger._rows import (
    COLUMNS,
    KEY,
    NAMES,
    TABLE,
    row_from_json,
    row_of,
    row_to_json,
    to_record,
)
from kanjia.ledger.store import MIGRATIONS, Conflict, Database, migrate, open_database


async def _columns(db: Database, table: str) -> set[str]:
    if db.dialect == "sqlite":
        return {r[1] for r in await db.fetch(f"PRAGMA table_info({table})")}
    rows = await db.fetch("SELECT column_name FROM information_schema.columns WHERE "
                          "table_name = ? AND table_schema = current_schema()", (table,))
    return {r[0] for r in rows}


async def test_migrate_from_empty(db_url: str) -> None:
    db = open_database(db_url)
    await db.connect()
    try:
        applied = await migrate(db)
        assert applied == [m.__name__ for m in MIGRATIONS]
        assert await migrate(db) == []  # idempotent
        names = [r[0] for r in await db.fetch("SELECT name FROM kanjia_migrations ORDER BY name")]
        assert names == sorted(m.__name__ for m in MIGRATIONS)
        assert await _columns(db, TABLE) == set(NAMES)
        assert {"id", "key_hash", "models", "rpm", "tpm", "revoked_at"} <= \
            await _columns(db, "api_keys")
        assert {"scope", "subject", "period", "amount_nano", "currency"} <= \
            await _columns(db, "budgets")
        assert {"name", "markup", "price_list"} <= await _columns(db, "tenants")
    finally:
        await db.close()


async def test_migrate_from_previous_schema(db_url: str) -> None:
    db = open_database(db_url)
    await db.connect()
    try:
        first = MIGRATIONS[0].__name__
        assert await migrate(db, upto=first) == [first]
        row = row_of(make_record())
        present = await _columns(db, TABLE)  # the first schema's columns (later ones default)
        keep = [i for i, (name, _) in enumerate(COLUMNS) if name in present]
        assert len(keep) < len(COLUMNS)
        await db.insert_ignore(TABLE, tuple(COLUMNS[i] for i in keep), KEY,
                               [tuple(row[i] for i in keep)])
        rest = await migrate(db)
        assert rest == [m.__name__ for m in MIGRATIONS[1:]]
        got = await db.fetch(f"SELECT {', '.join(NAMES)} FROM {TABLE}")
        assert [tuple(r) for r in got] == [row]
    finally:
        await db.close()


async def test_concurrent_migrations(db_url: str) -> None:
    dbs = [open_database(db_url) for _ in range(3)]
    for d in dbs:
        await d.connect()
    try:
        results = await asyncio.gather(*(migrate(d) for d in dbs))
        assert sorted(n for r in results for n in r) == sorted(m.__name__ for m in MIGRATIONS)
    finally:
        for d in dbs:
            await d.close()


async def test_insert_ignore_is_idempotent(db: Database) -> None:
    rows = [row_of(make_record()) for _ in range(10)]
    assert await db.insert_ignore(TABLE, COLUMNS, KEY, rows[:6]) == 6
    assert await db.insert_ignore(TABLE, COLUMNS, KEY, rows) == 4
    (count,), = await db.fetch(f"SELECT COUNT(*) FROM {TABLE}")
    assert count == 10


async def test_conflict_is_reported(db: Database) -> None:
    step = ("INSERT INTO tenants (name, created_at, updated_at) VALUES (?, ?, ?)", ("t", 1.0, 1.0))
    await db.transaction([step])
    try:
        await db.transaction([step])
    except Conflict:
        pass
    else:
        raise AssertionError("expected a conflict")


async def test_record_round_trip(db: Database) -> None:
    rec = make_record(cost=Decimal("0.000000123"), charge=Decimal("1.5"), charge_currency="USD",
                      client_disconnected=True, usage_estimated=True, stream=True,
                      ttft_ms=None, tenant="acme", key_id="key_1", status=499,
                      attempts=["a@x", "b@y"])
    await db.insert_ignore(TABLE, COLUMNS, KEY, [row_of(rec)])
    (row,) = await db.fetch(f"SELECT {', '.join(NAMES)} FROM {TABLE}")
    back = to_record(tuple(row))
    assert back.cost == Decimal("0.000000123")
    assert (back.charge, back.charge_currency) == (Decimal("1.5"), "USD")
    assert back.client_disconnected and back.usage_estimated and back.stream
    assert back.attempts == ["a@x", "b@y"]
    assert back.request_id == rec.request_id and back.status == 499


@settings(max_examples=200, deadline=None)
@given(cost=st.decimals(min_value=0, max_value=10**6, places=9, allow_nan=False),
       tokens=st.integers(min_value=0, max_value=10**9), text=st.text(max_size=30))
def test_journal_line_round_trip(cost: Decimal, tokens: int, text: str) -> None:
    rec = make_record(cost=cost, output_tokens=tokens, route=text or None)
    row = row_of(rec)
    assert row_from_json(row_to_json(row)) == row
    assert to_record(row).cost == cost
    assert row_from_json(b'["torn', ) is None


async def test_batch_insert_keeps_every_value_exactly(db: Database) -> None:
    """Floats to the last bit, 64-bit integers, NULLs and awkward text survive the batch
    insert (PostgreSQL: the rows as one jsonb array); there a NaN row (null in JSON) is
    kept as NaN, not NULL (SQLite stores no NaN: NULL, refused by the schema)."""
    floats = [1733140800.123456, 0.1, 1e-300, 5e-324, 1.7976931348623157e308, 2.0]
    texts = ['q"uo\\te', "line\nbreak", "模型 ✓", "", "\t", "a'b"]
    rows = []
    for i, (f, text) in enumerate(zip(floats, texts, strict=True)):
        row = list(row_of(make_record(ts=1733140800.0 + i, route=text or None,
                                      latency_ms=f, ttft_ms=None if i % 2 else f,
                                      input_tokens=2**62 + i)))
        rows.append(tuple(row))
    assert await db.insert_ignore(TABLE, COLUMNS, KEY, rows) == 6
    got = {r[0]: r for r in await db.fetch(f"SELECT {', '.join(NAMES)} FROM {TABLE}")}
    assert {k: tuple(v) for k, v in got.items()} == {r[0]: r for r in rows}
    if db.dialect != "postgresql":
        return
    nan = row_of(make_record(latency_ms=float("nan")))
    assert await db.insert_ignore(TABLE, COLUMNS, KEY, [nan, rows[0]]) == 1
    ((latency,),) = await db.fetch(f"SELECT latency_ms FROM {TABLE} WHERE request_id = ?",
                                   (nan[0],))
    assert latency != latency  # NaN
