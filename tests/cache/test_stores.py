"""The cache's stores: a bounded local SQLite file and Redis; a failing one degrades."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest

from kanjia.cache import Cached, LocalStore, RedisStore, ResponseCache
from kanjia.catalog import Usage
from kanjia.config import ResponseCacheSettings

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_local_store_ttl_and_survives_reopen(tmp_path: Path) -> None:
    clock = Clock()
    path = str(tmp_path / "rc.db")
    store = LocalStore(path, max_entries=10, max_bytes=10_000, clock=clock)
    store.put_now("a", b"answer-a", ttl_s=60)
    assert store.get_now("a") == b"answer-a"
    again = LocalStore(path, max_entries=10, max_bytes=10_000, clock=clock)  # a restart
    assert again.get_now("a") == b"answer-a"
    clock.now += 61
    assert again.get_now("a") is None


def test_local_store_evicts_least_recently_used_by_entries(tmp_path: Path) -> None:
    clock = Clock()
    store = LocalStore(str(tmp_path / "rc.db"), max_entries=3, max_bytes=10_000, clock=clock)
    for k in "abc":
        clock.now += 1
        store.put_now(k, k.encode() * 10, 3600)
    clock.now += 1
    assert store.get_now("a") is not None   # "a" used lately: "b" is now the oldest
    clock.now += 1
    store.put_now("d", b"d" * 10, 3600)
    assert store.get_now("b") is None
    assert all(store.get_now(k) is not None for k in "acd")
    assert store.stats() == (3, 30)


def test_local_store_bounded_by_bytes_and_expired_first(tmp_path: Path) -> None:
    clock = Clock()
    store = LocalStore(str(tmp_path / "rc.db"), max_entries=100, max_bytes=1000, clock=clock)
    store.put_now("short", b"s" * 300, ttl_s=5)
    clock.now += 1
    store.put_now("x", b"x" * 300, 3600)
    clock.now += 1
    store.put_now("y", b"y" * 300, 3600)
    clock.now += 10                          # "short" expired
    store.put_now("z", b"z" * 300, 3600)
    assert store.stats() == (3, 900)         # the expired one went, not "x"
    clock.now += 1
    store.put_now("w", b"w" * 300, 3600)
    assert store.get_now("x") is None        # then the least recently used
    assert store.stats()[1] <= 1000
    store.put_now("huge", b"h" * 5000, 3600)  # larger than the bound: not kept
    assert store.get_now("huge") is None


def _entry(stored: float) -> Cached:
    return Cached({"choices": []}, "deepseek", "deepseek-chat", Usage(10, 2, 0, 5), False,
                  stored)


async def _redis_up() -> bool:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


def test_redis_store_round_trip_and_ttl() -> None:
    async def run() -> None:
        if not await _redis_up():
            pytest.skip("no Redis on 127.0.0.1:6379")
        prefix = f"kanjia-test-rc-{uuid.uuid4().hex[:8]}:"
        store = RedisStore(REDIS_URL, prefix=prefix)
        cache = ResponseCache(ResponseCacheSettings(), store=store)
        try:
            assert await cache.get("k") is None
            assert await cache.put("k", _entry(cache.now()), ttl_s=30)
            got = await cache.get("k")
            assert got is not None and got.usage == Usage(10, 2, 0, 5)
            ttl = await store._client.ttl(prefix + "k")
            assert 0 < ttl <= 30
            # the request's max age: an entry older than it is a miss
            assert await cache.get("k", max_age_s=3600) is not None
        finally:
            await store._client.delete(prefix + "k")
            await cache.close()
    asyncio.run(run())


class Broken:
    def __init__(self) -> None:
        self.calls = 0

    async def get(self, key: str) -> bytes | None:
        self.calls += 1
        raise OSError("disk on fire")

    async def put(self, key: str, value: bytes, ttl_s: int) -> None:
        self.calls += 1
        raise OSError("disk on fire")

    async def close(self) -> None:
        return None


def test_a_failing_store_is_no_cache_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> None:
        cache = ResponseCache(ResponseCacheSettings(), store=Broken())
        with caplog.at_level(logging.WARNING, logger="kanjia.cache"):
            for _ in range(5):
                assert await cache.get("k") is None
                assert await cache.put("k", _entry(0), 60) is False
        assert cache.failures == 10
        warnings = [r for r in caplog.records if r.name == "kanjia.cache"]
        assert len(warnings) == 1 and "disk on fire" in warnings[0].getMessage()
    asyncio.run(run())


def test_unreachable_redis_degrades() -> None:
    async def run() -> None:
        cache = ResponseCache(ResponseCacheSettings(), redis="redis://127.0.0.1:1/0")
        assert await cache.get("k") is None
        assert await cache.put("k", _entry(0), 60) is False
        assert cache.failures == 2
        await cache.close()
    asyncio.run(run())


def test_max_age_from_the_request(tmp_path: Path) -> None:
    async def run() -> None:
        clock = Clock()
        cache = ResponseCache(ResponseCacheSettings(path=str(tmp_path / "rc.db")), clock=clock)
        await cache.put("k", _entry(clock.now), 3600)
        clock.now += 100
        assert await cache.get("k") is not None
        assert await cache.get("k", max_age_s=99) is None
        assert await cache.get("k", max_age_s=101) is not None
        await cache.close()
    asyncio.run(run())
