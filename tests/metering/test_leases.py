"""Budget and rate-limit leases (``LeasedLimiter``): Redis once per many requests, with the
bounds ``kanjia.metering._leases`` documents: admitted requests never reserve more than a
budget together; a dead worker overspends by at most its lease; leases go back on
shutdown, when idle, when they expire and when a budget's limit is lowered."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest
from tests.ledger._records import make_record
from tests.metering.conftest import FixedFx

from kanjia.errors import AuthFailed, BudgetExceeded
from kanjia.ledger.store import Database
from kanjia.metering import Gatekeeper, LeasedLimiter, parse_budget
from kanjia.metering.limits import Claim, Denied, Rate, Unseeded, minute_of


def _claim(window: str, limit: int, amount: int) -> Claim:
    return Claim(window, limit, amount, 3600)


@pytest.fixture()
async def make(redis_url: str) -> AsyncIterator[Callable[..., LeasedLimiter]]:
    """Leased limiters on one Redis prefix (the workers and instances of one deployment)."""
    made: list[LeasedLimiter] = []

    def new(**kw: float) -> LeasedLimiter:
        lim = LeasedLimiter(redis_url, 60.0, **kw)  # type: ignore[arg-type]
        made.append(lim)
        return lim

    first = new()
    await first.seed({}, complete=True)
    yield new
    await first.clear()
    for lim in made:
        if not lim._closed:
            await lim.close()


async def _until(check: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[misc]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_many_requests_take_few_round_trips(make: Callable[..., LeasedLimiter]) -> None:
    lim = make(sync_s=3600, idle_s=3600)  # only the syncs requests need (none by the clock)
    w, now = f"w-{uuid.uuid4().hex}", time.time()
    rate = Rate(f"k-{uuid.uuid4().hex}", 10_000, 10_000_000, 300, minute_of(now))
    for i in range(500):
        await lim.admit(f"h{i}", [_claim(w, 10**12, 1000)], rate, now)
        lim.settle_now(f"h{i}", [_claim(w, 10**12, 1000)], [400], rate, 120)
    assert lim.syncs <= 10, lim.syncs  # a lease covers up to LEASE_REQUESTS requests
    spent, reserved = (await lim.windows([w]))[w]
    assert spent == 500 * 400
    lease, held, unflushed = lim.state(w)
    assert (held, unflushed) == (0, 0) and reserved == lease > 0
    await lim.close()  # the lease goes back
    probe = make()
    assert (await probe.windows([w]))[w] == (500 * 400, 0)


@pytest.mark.parametrize("lease_requests", [4, 128])
async def test_two_instances_400_concurrent_requests_never_reserve_past_the_limit(
        make: Callable[..., LeasedLimiter], lease_requests: int) -> None:
    a, b = make(lease_requests=lease_requests), make(lease_requests=lease_requests)
    w, month = f"c-{uuid.uuid4().hex}", f"m-{uuid.uuid4().hex}"  # a day and a month budget
    limit, reservation = 5000, 10
    admitted = 0

    async def one(lim: LeasedLimiter, i: int) -> None:
        nonlocal admitted
        claims = [_claim(month, 10**12, reservation), _claim(w, limit, reservation)]
        try:
            await lim.admit(f"h{i}", claims, None, time.time())
        except Denied as denied:
            assert denied.index == 1  # the day's budget, never the month's
            return
        admitted += 1
        await asyncio.sleep(random.random() * 0.02)
        cost = random.randint(5, reservation)
        lim.settle_now(f"h{i}", claims, [cost, cost], None, 0)

    for wave in range(6):  # settled spend frees room for later waves
        await asyncio.gather(*(one((a, b)[i % 2], wave * 1000 + i) for i in range(800)))
    await a.close()
    await b.close()
    state = await make().windows([w, month])
    spent, reserved = state[w]
    assert state[month] == (spent, 0)  # the same requests' spend on both
    assert reserved == 0  # both gave their leases back
    assert spent <= limit  # never more reserved than the limit: no overspend at all
    # refused early only while the other instance's lease was unused: at most its spare
    assert spent >= limit - reservation - 2 * lease_requests * reservation, spent
    assert admitted > limit // reservation


async def test_a_dead_worker_overspends_by_at_most_its_lease(
        make: Callable[..., LeasedLimiter]) -> None:
    # a never syncs on its own (as if it died right after these requests)
    a = make(sync_s=3600, lease_ttl_s=0.3, idle_s=3600, lease_requests=8)
    b = make(lease_requests=8)
    w, limit, cost = f"d-{uuid.uuid4().hex}", 1000, 10
    for i in range(5):
        await a.admit(f"a{i}", [_claim(w, limit, cost)], None, time.time())
        a.settle_now(f"a{i}", [_claim(w, limit, cost)], [cost], None, 0)
    lease, _, unflushed = a.state(w)
    assert 0 < unflushed <= lease  # settled here, not yet in Redis
    a._closed = True  # it dies: no sync, no close
    assert a._loop_task is not None
    a._loop_task.cancel()
    # b spends all it can; once a's lease expires (0.3 s) b gets that part too
    spent_b = 0

    async def b_took_all() -> bool:
        nonlocal spent_b
        try:
            await b.admit(f"b{spent_b}", [_claim(w, limit, cost)], None, time.time())
        except Denied:
            return time.time() > a_died + 0.5  # refused after a's lease expired
        b.settle_now(f"b{spent_b}", [_claim(w, limit, cost)], [cost], None, 0)
        spent_b += 1
        return False

    a_died = time.time()
    await _until(b_took_all)
    true_spend = 5 * cost + spent_b * cost
    assert true_spend <= limit + lease, (true_spend, lease)  # the documented bound
    assert true_spend == limit + unflushed  # (a's unpushed spend was invisible to b)
    await a.store.close()


async def test_idle_leases_go_back(make: Callable[..., LeasedLimiter]) -> None:
    lim = make(sync_s=0.01, idle_s=0.05)
    w = f"i-{uuid.uuid4().hex}"
    await lim.admit("h", [_claim(w, 10**9, 100)], None, time.time())
    assert (await lim.windows([w]))[w][1] > 100  # the lease's spare is reserved
    lim.settle_now("h", [_claim(w, 10**9, 100)], [60], None, 0)

    async def returned() -> bool:
        return lim.state(w) == (0, 0, 0)

    await _until(returned)
    assert (await make().windows([w]))[w] == (60, 0)


async def test_a_lowered_limit_takes_effect_on_the_next_request(
        make: Callable[..., LeasedLimiter]) -> None:
    lim, other = make(), make()
    w, now = f"l-{uuid.uuid4().hex}", time.time()
    for i in range(10):
        await lim.admit(f"h{i}", [_claim(w, 10_000, 100)], None, now)
        lim.settle_now(f"h{i}", [_claim(w, 10_000, 100)], [100], None, 0)
    assert lim.state(w)[0] >= 1000  # spare left under the old limit
    with pytest.raises(Denied) as info:  # the budget was edited down to 1000: all spent
        await lim.admit("h-low", [_claim(w, 1000, 100)], None, now)
    assert info.value.spent == 1000
    assert (await other.windows([w]))[w] == (1000, 0)  # the spare went back


async def test_rpm_across_workers_is_never_passed(make: Callable[..., LeasedLimiter]) -> None:
    a, b = make(), make()
    key, now = f"k-{uuid.uuid4().hex}", time.time()
    rate = Rate(key, 50, None, 10, minute_of(now))
    ok = 0

    async def one(lim: LeasedLimiter, i: int) -> None:
        nonlocal ok
        try:
            await lim.admit(f"r{i}", [], rate, now)
            ok += 1
        except Denied as denied:
            assert denied.kind == "rpm" and 1 <= denied.retry_after <= 61

    await asyncio.gather(*(one((a, b)[i % 2], i) for i in range(120)))
    assert ok <= 50
    for i in range(60):  # one after the other: what a's lease left is b's
        await one(a, 200 + i)
    await a.close()  # a's unused requests go back
    for i in range(60):
        await one(b, 300 + i)
    assert ok == 50


async def test_tokens_per_minute_are_corrected_at_settlement(
        make: Callable[..., LeasedLimiter]) -> None:
    lim = make()
    key, now = f"k-{uuid.uuid4().hex}", time.time()
    rate = Rate(key, None, 100, 60, minute_of(now))
    await lim.admit("h0", [], rate, now)
    await lim.admit("h1", [], rate, now)  # 60 < 100: admitted, now 120 held
    with pytest.raises(Denied) as info:
        await lim.admit("h2", [], rate, now)
    assert info.value.kind == "tpm"
    lim.settle_now("h0", [], [], rate, 10)
    lim.settle_now("h1", [], [], rate, 10)  # really 20 tokens in all
    await lim.admit("h3", [], rate, now)


async def test_redis_that_lost_its_state_asks_for_a_seed(redis_url: str) -> None:
    lim = LeasedLimiter(redis_url + "-empty")
    try:
        with pytest.raises(Unseeded):
            await lim.admit("h", [_claim("w", 10, 1)], None, time.time())
        await lim.seed({"w": (5, None)}, complete=True)
        await lim.admit("h", [_claim("w", 10, 1)], None, time.time())
        with pytest.raises(Denied):
            await lim.admit("h2", [_claim("w", 10, 5)], None, time.time())
    finally:
        await lim.clear()
        await lim.close()


async def test_a_key_with_two_budgets_and_rates_through_the_gatekeeper(
        db: Database, fx: FixedFx, redis_url: str) -> None:
    """The gateway's path: reserve and settle a key with a day and a month budget, rpm and
    tpm on leases (Redis only now and then); a budget edited down and a revocation reach
    the next request after the directory's refresh."""
    # (no syncs by the clock: the count below is the requests' own)
    gate = Gatekeeper(db, LeasedLimiter(redis_url, 60.0, sync_s=3600, idle_s=3600), fx,
                      poll_s=3600)
    await gate.start()
    try:
        secret, info = await gate.registry.create_key(
            "leased", rpm=1000, tpm=10_000_000,
            budgets=[parse_budget("100CNY/month"), parse_budget("10CNY/day")])
        caller = await gate.authenticate(secret, "deepseek/deepseek-chat")
        assert isinstance(gate.limiter, LeasedLimiter)
        for _ in range(300):
            hold = await gate.reserve(caller, "deepseek/deepseek-chat", Decimal("0.01"),
                                      "CNY", 500)
            assert hold is not None and len(hold.claims) == 2 and hold.rate is not None
            gate.settle_soon(hold, make_record(key_id=info.id, cost=Decimal("0.005")))
            await asyncio.sleep(0)  # (the settlements of one loop pass go together)
        assert gate.limiter.syncs <= 10
        status = {b["period"]: b for b in await gate.budget_status(
            gate.directory.budgets_of(caller.key))}  # type: ignore[arg-type]
        assert Decimal(status["day"]["spent"]) == Decimal("1.5")  # 300 × 0.005, exact
        assert Decimal(status["month"]["spent"]) == Decimal("1.5")
        await gate.registry.set_budget("key", info.id, parse_budget("1.5CNY/day"))
        await gate.refresh()
        with pytest.raises(BudgetExceeded):  # the new limit, though the lease had spare
            await gate.reserve(caller, "deepseek/deepseek-chat", Decimal("0.01"), "CNY", 500)
        await gate.registry.revoke_key(info.id)
        await gate.refresh()
        with pytest.raises(AuthFailed, match="revoked"):
            await gate.authenticate(secret, "deepseek/deepseek-chat")
    finally:
        await gate.close()


async def test_a_request_that_waited_past_its_minute_counts_in_the_next(
        make: Callable[..., LeasedLimiter]) -> None:
    """The gatekeeper stamps a request's minute when it arrives; one admitted after that
    minute ended (it waited for a sync) is counted in the current one, not refused."""
    lim = make()
    key, now = f"k-{uuid.uuid4().hex}", time.time()
    stale = Rate(key, 100, 1_000_000, 10, minute_of(now) - 1)
    for i in range(20):
        await lim.admit(f"s{i}", [], stale, time.time())
    assert lim.syncs <= 3
    fresh = Rate(key, 100, 1_000_000, 10, minute_of(time.time()))
    await lim.admit("f", [], fresh, time.time())
