"""Fixtures for the report tests: the packaged catalog and small SQLite ledgers with
known rows (PostgreSQL too, when KANJIA_TEST_PG_URL is reachable)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests._services import PG_URL, pg_reachable, pg_url_for

from kanjia.catalog import Catalog, Usage, cost_of, load_catalog
from kanjia.ledger._rows import COLUMNS, KEY, TABLE, row_of
from kanjia.ledger.record import CallRecord
from kanjia.ledger.store import Database, migrate, open_database


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


def ts(text: str) -> float:
    """Unix time of an ISO date-time (naive means UTC)."""
    at = datetime.fromisoformat(text)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def record(catalog: Catalog, model: str, at: str | float, *, input_tokens: int = 1000,
           output_tokens: int = 500, cached_tokens: int = 0, cache_write_tokens: int = 0,
           status: int = 200, latency_ms: float = 100.0, cache_write_1h_tokens: int = 0,
           **kw: Any) -> CallRecord:
    """A ledger record costed as the gateway costs it (``cost_of`` at its time)."""
    when = ts(at) if isinstance(at, str) else at
    vendor, _, name = model.partition("/")
    entry = catalog.get(vendor, name)
    cost, currency, period = Decimal(0), "CNY", "unpriced"
    if entry is not None:
        c = cost_of(Usage(input_tokens, cached_tokens, cache_write_tokens, output_tokens, 0,
                          cache_write_1h_tokens), entry, datetime.fromtimestamp(when, UTC))
        cost, currency, period = c.amount, c.currency, c.period_id
    base: dict[str, Any] = dict(
        request_id="kj-" + uuid.uuid4().hex[:24], ts=when, endpoint="chat", route=None,
        requested_model=model, vendor=vendor, model=name, deployment="default",
        input_tokens=input_tokens, cached_tokens=cached_tokens,
        cache_write_tokens=cache_write_tokens, output_tokens=output_tokens, cost=cost,
        currency=currency, cost_reporting=cost, reporting_currency=currency,
        price_period=period, latency_ms=latency_ms, status=status,
        cache_write_1h_tokens=cache_write_1h_tokens)
    base.update(kw)
    return CallRecord(**base)


def usage_of(r: CallRecord) -> Usage:
    """The tokens a record bills, as ``cost_of`` takes them."""
    return Usage(r.input_tokens, r.cached_tokens, r.cache_write_tokens, r.output_tokens, 0,
                 r.cache_write_1h_tokens)


#: spans of days random rows fall in: off-peak windows, prices changing within them
SPANS = (("2024-04-20", "2024-06-10"), ("2025-02-20", "2025-03-10"),
         ("2026-04-25", "2026-04-28"), ("2026-08-14", "2026-09-14"))


def random_when(rng: random.Random) -> float:
    """A random moment in one of ``SPANS``."""
    lo, hi = rng.choice(SPANS)
    return rng.uniform(ts(lo), ts(hi))


def random_prompt(rng: random.Random) -> tuple[int, int, int, int]:
    """Random prompt tokens (short, or past the long-prompt tiers) and, of them, cache
    reads, cache writes and 1-hour cache writes."""
    prompt = rng.choice((rng.randint(1, 4000), rng.randint(100_000, 700_000)))
    cached = rng.randint(0, prompt) if rng.random() < 0.5 else 0
    write_ = rng.randint(0, prompt - cached) if rng.random() < 0.2 else 0
    hour = rng.randint(0, write_) if write_ and rng.random() < 0.5 else 0
    return prompt, cached, write_, hour


async def write(db: Database, records: Iterable[CallRecord]) -> None:
    await db.insert_ignore(TABLE, COLUMNS, KEY, [row_of(r) for r in records])


async def _open(url: str) -> Database:
    db = open_database(url)
    await db.connect()
    await migrate(db)
    return db


@pytest.fixture()
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await _open(str(tmp_path / "ledger.db"))
    yield database
    await database.close()


@pytest.fixture()
async def pg_db() -> AsyncIterator[Database]:
    """A fresh PostgreSQL schema (dropped afterwards), or a skip."""
    if not await pg_reachable():
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    schema = f"kj_reports_{uuid.uuid4().hex[:10]}"
    database = await _open(pg_url_for(schema))
    yield database
    await database.close()
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def known_records(catalog: Catalog) -> list[CallRecord]:
    """Six requests in March 2025 with hand-checked costs (prices per 1M tokens):

    1. qwen-plus (0.8 / 2 CNY) 1M in + 0.5M out                 = 1.8 CNY
    2. qwen-plus 2M in                                          = 1.6 CNY
    3. deepseek-chat 12:00 Beijing (2 / 8 CNY) 1M + 1M          = 10 CNY
    4. deepseek-chat 04:00 Beijing, off-peak (1 / 4 CNY) 1M + 1M = 5 CNY
    5. gpt-4o (2.5 / 10 USD) 1M in + 0.1M out                   = 3.5 USD (7.30 CNY/USD)
    6. deepseek-chat, a 429 with no tokens                      = 0
    """
    return [
        record(catalog, "qwen/qwen-plus", "2025-03-03T04:00:00", input_tokens=1_000_000,
               output_tokens=500_000, latency_ms=100, route="cheap-chat", tenant="acme",
               key_id="k1"),
        record(catalog, "qwen/qwen-plus", "2025-03-04T04:00:00", input_tokens=2_000_000,
               output_tokens=0, latency_ms=300, route="cheap-chat", tenant="acme",
               key_id="k1"),
        record(catalog, "deepseek/deepseek-chat", "2025-03-03T04:00:00",
               input_tokens=1_000_000, output_tokens=1_000_000, latency_ms=200,
               tenant="globex", key_id="k2"),
        record(catalog, "deepseek/deepseek-chat", "2025-03-03T20:00:00",
               input_tokens=1_000_000, output_tokens=1_000_000, latency_ms=400,
               tenant="globex", key_id="k2"),
        record(catalog, "openai/gpt-4o", "2025-03-03T10:00:00", input_tokens=1_000_000,
               output_tokens=100_000, latency_ms=150, key_id="k2"),
        record(catalog, "deepseek/deepseek-chat", "2025-03-04T10:00:00", input_tokens=0,
               output_tokens=0, latency_ms=50, status=429, error_class="RateLimited",
               key_id="k2"),
    ]


@pytest.fixture()
async def known(db: Database, catalog: Catalog) -> Database:
    await write(db, known_records(catalog))
    return db
