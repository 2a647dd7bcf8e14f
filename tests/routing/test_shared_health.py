"""Breakers shared through Redis: what one board opens or closes, the others see,
without the request path waiting on Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from tests._services import REDIS_URL, redis_reachable

from kanjia import errors as e
from kanjia.routing.health import BreakerPolicy, HealthBoard
from kanjia.routing.shared_health import SharedHealth

POLICY = BreakerPolicy(failures=2, window_s=30, cooldown_s=15)


@pytest.fixture()
async def pair() -> AsyncIterator[list[SharedHealth]]:
    if not await redis_reachable():
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    prefix = f"kjtest-health-{uuid.uuid4().hex[:10]}"
    shared = [SharedHealth(HealthBoard(POLICY), REDIS_URL, prefix) for _ in range(2)]
    for s in shared:
        await s.start()
    for s in shared:
        await asyncio.wait_for(s.subscribed.wait(), 5)
    yield shared
    await shared[0].client.delete(shared[0].state_key)
    for s in shared:
        await s.close()


async def _heard(s: SharedHealth) -> float:
    t0 = time.perf_counter()
    await asyncio.wait_for(s.heard.wait(), 1.0)  # the done-when bound: within a second
    s.heard.clear()
    return time.perf_counter() - t0


async def test_an_opened_breaker_is_seen_by_the_other_within_a_second(
        pair: list[SharedHealth]) -> None:
    a, b = pair
    dep = "deepseek#default"
    a.board.get(dep).failure(e.Overloaded("x"))
    a.board.get(dep).failure(e.Overloaded("x"))  # the second failure opens it (no await)
    assert a.board.get(dep).state == "open"
    await _heard(b)
    seen = b.board.get(dep)
    assert seen.state == "open" and seen.reason == "overloaded" and not seen.available()
    assert b.board.snapshot(dep)["state"] == "open"
    # and closing it again (a successful probe) reaches the other too
    a.board.get(dep).success()
    await _heard(b)
    assert b.board.get(dep).state == "closed" and b.board.get(dep).available()
    assert a.applied == 0  # no echo of its own changes


async def test_a_disabled_deployment_and_a_restore_all_are_shared(
        pair: list[SharedHealth]) -> None:
    a, b = pair
    a.board.get("openai#default").failure(e.VendorAuthFailed("bad key"))
    await _heard(b)
    assert b.board.get("openai#default").state == "disabled"
    a.board.reset()
    await _heard(b)
    assert b.board.get("openai#default").state == "closed"


async def test_a_process_that_starts_later_learns_what_is_known(
        pair: list[SharedHealth]) -> None:
    a, _ = pair
    a.board.get("qwen#default").failure(e.Overloaded("x"))
    a.board.get("qwen#default").failure(e.Overloaded("x"))
    await asyncio.wait_for(pair[1].heard.wait(), 1.0)
    late = SharedHealth(HealthBoard(POLICY), REDIS_URL, a.channel.rsplit(":", 1)[0])
    await late.start()
    try:
        await asyncio.wait_for(late.subscribed.wait(), 5)
        b = late.board.get("qwen#default")
        assert b.state == "open"
        # its cooldown runs from when it opened there, not from when this one heard
        assert late.board.clock() - b.opened_at < POLICY.cooldown_s
    finally:
        await late.close()


async def test_failures_below_the_threshold_are_not_published(
        pair: list[SharedHealth]) -> None:
    a, b = pair
    a.board.get("kimi#default").failure(e.Overloaded("x"))
    assert not a._pending and (a._flushing is None or a._flushing.done())
    assert b.applied == 0
