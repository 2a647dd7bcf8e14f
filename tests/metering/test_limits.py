"""Budget and rate-limit stores: the same rules in-process and in Redis."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from kanjia.metering import LocalLimiter, RedisLimiter
from kanjia.metering.limits import Claim, Denied, Limiter, Rate, Unseeded, minute_of


@pytest.fixture(params=["local", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[Limiter]:
    lim: Limiter
    if request.param == "local":
        lim = LocalLimiter(hold_ttl_s=0.5)
    else:
        lim = RedisLimiter(request.getfixturevalue("redis_url"), hold_ttl_s=0.5)
        await lim.seed({}, complete=True)
    yield lim
    if isinstance(lim, RedisLimiter):
        await lim.clear()
    await lim.close()


def _claim(window: str, limit: int, amount: int) -> Claim:
    return Claim(window, limit, amount, 3600)


async def test_admits_while_the_worst_case_fits(limiter: Limiter) -> None:
    w = f"w-{uuid.uuid4().hex}"
    now = time.time()
    for i in range(3):  # 0, 30, 60 reserved before each: each 30 more still fits in 100
        await limiter.admit(f"h{i}", [_claim(w, 100, 30)], None, now)
    with pytest.raises(Denied) as info:  # 90 + 30 > 100: refused, not admitted
        await limiter.admit("h3", [_claim(w, 100, 30)], None, now)
    assert (info.value.kind, info.value.spent, info.value.reserved) == ("budget", 0, 90)
    await limiter.admit("h4", [_claim(w, 100, 10)], None, now)  # 10 fits exactly
    with pytest.raises(Denied):  # nothing is left: even a request that costs nothing waits
        await limiter.admit("h5", [_claim(w, 100, 0)], None, now)
    for i in (0, 1, 2, 4):
        await limiter.settle(f"h{i}", [_claim(w, 100, 30)], [20], None, 0)
    assert (await limiter.windows([w]))[w] == (80, 0)
    await limiter.admit("h6", [_claim(w, 100, 20)], None, now)


async def test_all_claims_or_none(limiter: Limiter) -> None:
    a, b = f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"
    now = time.time()
    await limiter.admit("h0", [_claim(b, 10, 10)], None, now)
    with pytest.raises(Denied) as info:
        await limiter.admit("h1", [_claim(a, 100, 5), _claim(b, 10, 5)], None, now)
    assert info.value.index == 1
    assert (await limiter.windows([a]))[a] == (0, 0)


async def test_concurrent_requests_overspend_by_at_most_one_reservation(
        limiter: Limiter) -> None:
    w = f"c-{uuid.uuid4().hex}"
    limit, reservation = 500, 10
    admitted = 0

    async def one(i: int) -> None:
        nonlocal admitted
        claim = _claim(w, limit, reservation)
        try:
            await limiter.admit(f"h{i}", [claim], None, time.time())
        except Denied:
            return
        admitted += 1
        await asyncio.sleep(random.random() * 0.02)
        await limiter.settle(f"h{i}", [claim], [random.randint(5, reservation)], None, 0)

    for _ in range(4):  # waves, so that settled spend frees room for later ones
        await asyncio.gather(*(one(i) for i in range(200)))
    spent, reserved = (await limiter.windows([w]))[w]
    assert reserved == 0
    assert limit - 2 * reservation <= spent <= limit  # a worst case that does not fit waits
    assert admitted > limit // reservation


async def test_requests_per_minute(limiter: Limiter) -> None:
    key, now = f"k-{uuid.uuid4().hex}", time.time()
    rate = Rate(key, 3, None, 10, minute_of(now))
    for i in range(3):
        await limiter.admit(f"h{i}", [], rate, now)
    with pytest.raises(Denied) as info:
        await limiter.admit("h3", [], rate, now)
    assert info.value.kind == "rpm" and 1 <= info.value.retry_after <= 61


async def test_tokens_per_minute_are_corrected_at_settlement(limiter: Limiter) -> None:
    key, now = f"k-{uuid.uuid4().hex}", time.time()
    rate = Rate(key, None, 100, 60, minute_of(now))
    await limiter.admit("h0", [], rate, now)
    await limiter.admit("h1", [], rate, now)  # 60 < 100: admitted, now 120 held
    with pytest.raises(Denied) as info:
        await limiter.admit("h2", [], rate, now)
    assert info.value.kind == "tpm"
    await limiter.settle("h0", [], [], rate, 10)
    await limiter.settle("h1", [], [], rate, 10)  # really 20 tokens in all
    await limiter.admit("h3", [], rate, now)


async def test_unsettled_holds_expire(limiter: Limiter) -> None:
    """The limiter takes the time as an argument: the test moves it on, never waits."""
    w, now = f"e-{uuid.uuid4().hex}", time.time()
    await limiter.admit("h0", [_claim(w, 100, 100)], None, now)
    with pytest.raises(Denied):
        await limiter.admit("h1", [_claim(w, 100, 1)], None, now)
    with pytest.raises(Denied):  # ttl 0.5 s: still held just before it
        await limiter.admit("h1", [_claim(w, 100, 1)], None, now + 0.45)
    # past the ttl (in-process, holds are swept at most once a second)
    await limiter.admit("h2", [_claim(w, 100, 1)], None, now + 1.1)
    # a late settlement still counts what was spent, and releases nothing twice
    await limiter.settle("h0", [_claim(w, 100, 100)], [40], None, 0)
    assert (await limiter.windows([w]))[w] == (40, 1)


async def test_seed_never_lowers_spend(limiter: Limiter) -> None:
    w = f"s-{uuid.uuid4().hex}"
    await limiter.seed({w: (50, 3600)})
    await limiter.seed({w: (20, 3600)})
    assert (await limiter.windows([w]))[w] == (50, 0)


async def test_redis_that_lost_its_state_asks_for_a_seed(redis_url: str) -> None:
    lim = RedisLimiter(redis_url)
    try:
        with pytest.raises(Unseeded):
            await lim.admit("h", [], None, time.time())
        assert not await lim.alive()
        await lim.seed({"w": (5, None)}, complete=True)
        assert await lim.alive()
        await lim.admit("h", [_claim("w", 10, 1)], None, time.time())
    finally:
        await lim.clear()
        await lim.close()


async def test_closed_windows_are_forgotten() -> None:
    lim = LocalLimiter()
    now = time.time()
    await lim.admit("h0", [_claim("old", 100, 10)], None, now)
    await lim.settle("h0", [_claim("old", 100, 10)], [7], None, 0)
    await lim.admit("h1", [_claim("busy", 100, 10)], None, now)
    await lim.retain({"new"})
    assert (await lim.windows(["old", "busy"])) == {"old": (0, 0), "busy": (0, 10)}
