"""A ledger spanning three years, written directly (records with their own timestamps,
costed as the gateway costs them), for the dashboard on a long window."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from kanjia.catalog import Catalog, Usage, cost_of
from kanjia.ledger._rows import COLUMNS, KEY, TABLE, row_of
from kanjia.ledger.record import CallRecord
from kanjia.ledger.store import migrate, open_database

#: the models the traffic uses; each is priced from before the window starts or soon after
MODELS = ("qwen/qwen-plus", "qwen/qwen-max", "deepseek/deepseek-chat", "openai/gpt-4o-mini",
          "zhipu/glm-4-flash", "moonshot/moonshot-v1-8k", "anthropic/claude-3-5-haiku-20241022",
          "openrouter/meta-llama/llama-3.3-70b-instruct:free")
YEARS = 3


def first_day(today: date) -> date:
    """The first day of the three-year window ending ``today``."""
    return today - timedelta(days=365 * YEARS)


def records(catalog: Catalog, today: date, seed: int = 20) -> list[CallRecord]:
    """Traffic every other day from ``first_day(today)`` to ``today``, growing over time."""
    rng = random.Random(seed)
    out = []
    start = first_day(today)
    n_days = (today - start).days + 1
    for i in range(0, n_days, 2):
        day = start + timedelta(days=i)
        for j in range(1 + 3 * i // n_days):
            model = MODELS[(i // 2 + j) % len(MODELS)]
            vendor, _, name = model.partition("/")
            at = datetime(day.year, day.month, day.day, 9 + j, rng.randrange(60), tzinfo=UTC)
            entry = catalog.get(vendor, name)
            tokens_in, tokens_out = rng.randrange(2_000, 40_000), rng.randrange(200, 4_000)
            cost, currency, period = Decimal(0), "CNY", "unpriced"
            if entry is not None:
                c = cost_of(Usage(tokens_in, 0, 0, tokens_out, 0, 0), entry, at)
                cost, currency, period = c.amount, c.currency, c.period_id
            out.append(CallRecord(
                request_id=f"kj-long-{i:05d}-{j}", ts=at.timestamp(), endpoint="chat",
                route="cheap-chat" if j % 2 else None, requested_model=model, vendor=vendor,
                model=name, deployment=f"{vendor}#default", input_tokens=tokens_in,
                output_tokens=tokens_out, cost=cost, currency=currency,
                cost_reporting=cost, reporting_currency=currency, price_period=period,
                latency_ms=200.0 + rng.randrange(800), attempts=[model]))
    return out


async def write_ledger(database: str, catalog: Catalog, today: date) -> int:
    """Create the ledger at ``database`` and fill it; returns the number of records."""
    recs = records(catalog, today)
    db = open_database(database)
    await db.connect()
    try:
        await migrate(db)
        await db.insert_ignore(TABLE, COLUMNS, KEY, [row_of(r) for r in recs])
    finally:
        await db.close()
    return len(recs)
