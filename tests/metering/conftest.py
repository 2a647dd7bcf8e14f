"""Metering fixtures: the ledger's databases (``tests/ledger/conftest.py``: real SQLite
files, a real PostgreSQL schema), a real Redis prefix per test run (cleaned up), and a
fixed exchange rate."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
from tests._services import REDIS_URL, redis_reachable, redis_url_for
from tests.ledger.conftest import db, db_url, pg_schema, pg_url, run_sync

__all__ = ["FixedFx", "db", "db_url", "fx", "pg_schema", "pg_url", "redis_base", "redis_url",
           "run_sync"]

RUN = uuid.uuid4().hex[:10]


class FixedFx:
    """7 CNY per USD, every day."""

    rate = Decimal(7)

    def convert(self, amount: Decimal, from_cur: str, to_cur: str, at: date) -> Decimal:
        if from_cur == to_cur:
            return amount
        return amount * self.rate if from_cur == "USD" else amount / self.rate


@pytest.fixture(scope="session")
def redis_base() -> Iterator[str]:
    if not run_sync(redis_reachable):
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    prefix = f"kjtest-{RUN}"
    yield prefix

    async def clean() -> None:
        import redis.asyncio as aioredis

        client = aioredis.from_url(REDIS_URL)
        try:
            async for key in client.scan_iter(match=f"{prefix}*", count=1000):
                await client.delete(key)
        finally:
            await client.aclose()

    run_sync(clean)


@pytest.fixture()
def redis_url(redis_base: str) -> str:
    """A fresh key prefix for one test."""
    return redis_url_for(f"{redis_base}-{uuid.uuid4().hex[:8]}")


@pytest.fixture()
def fx() -> FixedFx:
    return FixedFx()
