"""Metering fixtures: real SQLite files, a real PostgreSQL schema and a real Redis
prefix per test run (both cleaned up), and a fixed exchange rate."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from tests._services import PG_URL, pg_reachable

from kanjia.metering.store import Database, migrate, open_database

REDIS_URL = os.environ.get("KANJIA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN = uuid.uuid4().hex[:10]


class FixedFx:
    """7 CNY per USD, every day."""

    rate = Decimal(7)

    def convert(self, amount: Decimal, from_cur: str, to_cur: str, at: date) -> Decimal:
        if from_cur == to_cur:
            return amount
        return amount * self.rate if from_cur == "USD" else amount / self.rate


def run_sync(fn: Callable[[], Awaitable[object]]) -> object:
    """Run a coroutine to completion on a fresh loop in another thread (fixtures may be
    set up from inside a running loop)."""
    out: list[object] = []

    def target() -> None:
        async def main() -> object:
            return await fn()

        out.append(asyncio.run(main()))

    t = threading.Thread(target=target)
    t.start()
    t.join()
    return out[0] if out else None


async def _redis_reachable() -> bool:
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        return bool(await client.ping())
    except (OSError, aioredis.RedisError):
        return False
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    """A schema for this test run; dropped (with everything in it) at the end."""
    if not run_sync(pg_reachable):
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    schema = f"kj_test_{RUN}"
    yield schema

    async def drop() -> None:
        import asyncpg

        conn = await asyncpg.connect(PG_URL)
        try:
            rows = await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1",
                                    f"kj_test_{RUN}%")
            for (name,) in rows:
                await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
        finally:
            await conn.close()

    run_sync(drop)


def pg_url_for(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}schema={schema}"


@pytest.fixture()
def pg_url(pg_schema: str) -> str:
    """A fresh, empty schema for one test."""
    return pg_url_for(f"{pg_schema}_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def redis_base() -> Iterator[str]:
    if not run_sync(_redis_reachable):
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


def redis_url_for(prefix: str) -> str:
    sep = "&" if "?" in REDIS_URL else "?"
    return f"{REDIS_URL}{sep}prefix={prefix}"


@pytest.fixture()
def redis_url(redis_base: str) -> str:
    """A fresh key prefix for one test."""
    return redis_url_for(f"{redis_base}-{uuid.uuid4().hex[:8]}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "ledger.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture()
async def db(db_url: str) -> AsyncIterator[Database]:
    database = open_database(db_url)
    await database.connect()
    await migrate(database)
    yield database
    await database.close()


@pytest.fixture()
def fx() -> FixedFx:
    return FixedFx()
