"""The local services the tests use for real: where they are, and whether they answer."""

from __future__ import annotations

import asyncio
import os

__all__ = ["PG_URL", "pg_reachable"]

PG_URL = os.environ.get("KANJIA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def pg_reachable(url: str = PG_URL) -> bool:
    """Does PostgreSQL at ``url`` accept a connection within a few seconds?"""
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(url, timeout=2), 3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True
