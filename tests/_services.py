"""The local services the tests use for real: where they are, whether they answer, and the
URL of a schema (PostgreSQL) or key prefix (Redis) of one's own in them."""

from __future__ import annotations

import asyncio
import os

__all__ = ["PG_URL", "REDIS_URL", "pg_reachable", "pg_url_for", "redis_reachable",
           "redis_url_for"]

PG_URL = os.environ.get("KANJIA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("KANJIA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def pg_reachable(url: str = PG_URL) -> bool:
    """Does PostgreSQL at ``url`` accept a connection within a few seconds?"""
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(url, timeout=2), 3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


async def redis_reachable(url: str = REDIS_URL) -> bool:
    """Does Redis at ``url`` answer a PING?"""
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, socket_connect_timeout=2)
    try:
        return bool(await client.ping())
    except (OSError, aioredis.RedisError):
        return False
    finally:
        await client.aclose()


def _with_param(url: str, name: str, value: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}{name}={value}"


def pg_url_for(schema: str) -> str:
    """The test PostgreSQL, with the ledger's tables in ``schema``."""
    return _with_param(PG_URL, "schema", schema)


def redis_url_for(prefix: str) -> str:
    """The test Redis, with every key under ``prefix``."""
    return _with_param(REDIS_URL, "prefix", prefix)
