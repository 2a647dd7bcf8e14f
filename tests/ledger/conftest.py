"""Ledger fixtures: a real SQLite file and a real PostgreSQL schema per test (the
schemas dropped at the end of the run), migrated."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from tests._services import PG_URL, pg_reachable, pg_url_for

from kanjia.ledger.store import Database, migrate, open_database

RUN = uuid.uuid4().hex[:10]


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


@pytest.fixture()
def pg_url(pg_schema: str) -> str:
    """A fresh, empty schema for one test."""
    return pg_url_for(f"{pg_schema}_{uuid.uuid4().hex[:8]}")


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
