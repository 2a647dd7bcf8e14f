"""Keyed access: 401 / 403 / 429, budgets in any currency, resellers' charges, seeding."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from tests.ledger._records import make_record
from tests.metering.conftest import FixedFx

from kanjia.errors import AuthFailed, BudgetExceeded, PermissionDenied, RateLimited
from kanjia.ledger._rows import COLUMNS, KEY, TABLE, row_of
from kanjia.ledger.store import Database
from kanjia.metering import Gatekeeper, LocalLimiter, PriceList, Registry, parse_budget


@pytest.fixture()
async def gate(db: Database, fx: FixedFx) -> AsyncIterator[Gatekeeper]:
    g = Gatekeeper(db, LocalLimiter(), fx, master_key="master-secret", poll_s=3600)
    await g.start()
    yield g
    await g.close()


async def test_open_until_the_first_key(gate: Gatekeeper) -> None:
    caller = await gate.authenticate(None, "deepseek/deepseek-chat")
    assert caller.key is None and not caller.admin
    assert (await gate.authenticate("sk-whatever", "x")).key is None
    with pytest.raises(AuthFailed):  # a kanjia-shaped key that does not exist
        await gate.authenticate("kj-nope", "x")
    await gate.registry.create_key("first")
    await gate.refresh()
    with pytest.raises(AuthFailed, match="required"):
        await gate.authenticate(None, "x")
    with pytest.raises(AuthFailed, match="invalid"):
        await gate.authenticate("sk-whatever", "x")
    assert (await gate.authenticate("master-secret", "x")).admin


async def test_required_from_the_start(db: Database, fx: FixedFx) -> None:
    g = Gatekeeper(db, LocalLimiter(), fx, require_keys=True)
    await g.start()
    try:
        with pytest.raises(AuthFailed):
            await g.authenticate(None, "x")
    finally:
        await g.close()


async def test_a_key_made_elsewhere_works_at_once_and_revocation(gate: Gatekeeper,
                                                                 db: Database) -> None:
    secret, info = await Registry(db).create_key("elsewhere")  # not via this gate
    caller = await gate.authenticate(secret, "x")
    assert caller.key is not None and caller.key.id == info.id
    await Registry(db).revoke_key(info.id)
    await gate.refresh()
    with pytest.raises(AuthFailed, match="revoked"):
        await gate.authenticate(secret, "x")


async def test_model_allowlist(gate: Gatekeeper) -> None:
    secret, _ = await gate.registry.create_key("limited", models=["deepseek/*", "cheap-chat"])
    await gate.refresh()
    route = await gate.authenticate(secret, "cheap-chat")
    assert route.model_ok
    await gate.reserve(route, "qwen/qwen-max", Decimal(1), "CNY", 10)  # the route decides
    bare = await gate.authenticate(secret, "deepseek-chat")  # a bare name: judged by target
    await gate.reserve(bare, "deepseek/deepseek-chat", Decimal(1), "CNY", 10)
    other = await gate.authenticate(secret, "openai/gpt-4o")
    with pytest.raises(PermissionDenied) as info:
        await gate.reserve(other, "openai/gpt-4o", Decimal(1), "CNY", 10)
    assert info.value.status == 403


async def test_budget_in_another_currency(gate: Gatekeeper) -> None:
    secret, info = await gate.registry.create_key("usd", budgets=[parse_budget("1.1USD/day")])
    await gate.refresh()
    caller = await gate.authenticate(secret, "deepseek/deepseek-chat")
    hold = await gate.reserve(caller, "deepseek/deepseek-chat", Decimal("7"), "CNY", 100)
    # 7 CNY = 1 USD, plus the 5% margin for prompt-token estimates
    assert hold is not None and hold.claims[0].amount == 1_050_000_000
    # 0.05 USD is left: a request whose worst case is more is refused, not admitted
    with pytest.raises(BudgetExceeded) as refused:
        await gate.reserve(caller, "deepseek/deepseek-chat", Decimal("0.35"), "CNY", 100)
    assert refused.value.status == 429 and refused.value.code == "budget_exceeded"
    assert "1.1 USD budget today" in refused.value.message
    assert "may cost up to 0.0525 USD" in refused.value.message
    assert "resets on" in refused.value.message
    small = await gate.reserve(caller, "deepseek/deepseek-chat", Decimal("0.3"), "CNY", 100)
    assert small is not None  # 0.045 USD fits in what is left
    rec = make_record(key_id=info.id, cost=Decimal("3.5"), currency="CNY")
    await gate.settle(hold, rec)
    await gate.settle(small, make_record(key_id=info.id, cost=Decimal(0), currency="CNY"))
    state = await gate.budget_status(gate.directory.budgets_of(caller.key))  # type: ignore[arg-type]
    assert (state[0]["spent"], state[0]["reserved"]) == ("0.5", "0")


async def test_tenant_markup_is_what_budgets_count(gate: Gatekeeper) -> None:
    await gate.registry.set_tenant("shop", markup=Decimal("1.5"))
    await gate.registry.set_budget("tenant", "shop", parse_budget("4CNY/month"))
    secret, info = await gate.registry.create_key("customer", tenant="shop")
    await gate.refresh()
    caller = await gate.authenticate(secret, "m")
    hold = await gate.reserve(caller, "deepseek/deepseek-chat", Decimal(2), "CNY", 10)
    assert hold is not None and hold.max_charge == Decimal("3.15")  # 2 × 1.5, + 5%
    rec = make_record(key_id=info.id, tenant="shop", cost=Decimal(1))
    gate.stamp(rec)
    assert (rec.charge, rec.charge_currency) == (Decimal("1.5"), "CNY")
    await gate.settle(hold, rec)
    state = await gate.budget_status(gate.directory.budgets_of(info))
    assert state[0]["spent"] == "1.5"


async def test_tenant_price_list(gate: Gatekeeper) -> None:
    prices = PriceList.parse({"currency": "USD", "models": {
        "deepseek/*": {"input_mtok": 1, "output_mtok": 4, "cached_mtok": "0.1"}}})
    await gate.registry.set_tenant("resell", price_list=prices)
    await gate.registry.create_key("c", tenant="resell")
    await gate.refresh()
    rec = make_record(tenant="resell", input_tokens=1_000_000, cached_tokens=500_000,
                      output_tokens=250_000, cost=Decimal("0.9"))
    gate.stamp(rec)
    assert rec.charge == Decimal("0.5") + Decimal("0.05") + Decimal("1")
    assert rec.charge_currency == "USD" and rec.cost == Decimal("0.9")
    unknown = make_record(tenant="resell", vendor="qwen", model="qwen-max", cost=Decimal(2))
    gate.stamp(unknown)  # not on the list: charged at cost
    assert (unknown.charge, unknown.charge_currency) == (Decimal(2), "CNY")
    ceiling, cur = gate.pricing.ceiling("resell", "deepseek/deepseek-chat", Decimal(0), "CNY",
                                        1_000_000)
    assert (ceiling, cur) == (Decimal(4), "USD")


async def test_spend_is_seeded_from_the_ledger(db: Database, fx: FixedFx) -> None:
    reg = Registry(db)
    secret, info = await reg.create_key("old", budgets=[parse_budget("1CNY/day")])
    old = make_record(key_id=info.id, ts=time.time() - 3 * 86400, cost=Decimal(5))
    today = [make_record(key_id=info.id, cost=Decimal("0.6")) for _ in range(2)]
    await db.insert_ignore(TABLE, COLUMNS, KEY, [row_of(r) for r in (old, *today)])
    g = Gatekeeper(db, LocalLimiter(), fx)
    await g.start()
    try:
        caller = await g.authenticate(secret, "m")
        with pytest.raises(BudgetExceeded, match=r"spent 1\.2 CNY"):
            await g.reserve(caller, "deepseek/deepseek-chat", Decimal("0.01"), "CNY", 10)
    finally:
        await g.close()


async def test_requests_per_minute(gate: Gatekeeper) -> None:
    secret, _ = await gate.registry.create_key("slow", rpm=2)
    await gate.refresh()
    caller = await gate.authenticate(secret, "m")
    for _ in range(2):
        await gate.reserve(caller, "deepseek/deepseek-chat", Decimal(0), "CNY", 10)
    with pytest.raises(RateLimited) as info:
        await gate.reserve(caller, "deepseek/deepseek-chat", Decimal(0), "CNY", 10)
    assert info.value.status == 429 and info.value.retry_after is not None
    assert "2 requests per minute" in info.value.message


async def test_redis_down_refuses_metered_requests(db: Database, fx: FixedFx) -> None:
    from kanjia.errors import Overloaded
    from kanjia.metering import RedisLimiter

    reg = Registry(db)
    secret, _ = await reg.create_key("k", budgets=[parse_budget("1CNY/day")])
    g = Gatekeeper(db, LocalLimiter(), fx)
    await g.start()
    g.limiter = RedisLimiter("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        caller = await g.authenticate(secret, "m")
        with pytest.raises(Overloaded) as info:
            await g.reserve(caller, "deepseek/deepseek-chat", Decimal("0.01"), "CNY", 10)
        assert info.value.status == 503
    finally:
        await g.close()


async def test_redis_that_lost_its_state_is_reseeded_from_the_ledger(
        db: Database, fx: FixedFx, redis_url: str) -> None:
    from kanjia.metering import RedisLimiter

    reg = Registry(db)
    secret, info = await reg.create_key("k", budgets=[parse_budget("1CNY/day")])
    limiter = RedisLimiter(redis_url)
    g = Gatekeeper(db, limiter, fx, poll_s=3600)
    await g.start()
    try:
        caller = await g.authenticate(secret, "m")
        await g.reserve(caller, "deepseek/deepseek-chat", Decimal("0.01"), "CNY", 10)
        spent = [make_record(key_id=info.id, cost=Decimal("0.7")) for _ in range(2)]
        await db.insert_ignore(TABLE, COLUMNS, KEY, [row_of(r) for r in spent])
        await limiter.clear()  # Redis restarted empty
        with pytest.raises(BudgetExceeded, match=r"spent 1\.4 CNY"):
            await g.reserve(caller, "deepseek/deepseek-chat", Decimal("0.01"), "CNY", 10)
        assert await limiter.alive()
    finally:
        await limiter.clear()
        await g.close()


async def test_unpriced_models_under_a_budget(db: Database, fx: FixedFx) -> None:
    from kanjia.metering import SellPrice, Unpriced, UnpricedModel

    refuse = Gatekeeper(db, LocalLimiter(), fx, poll_s=3600)
    allow = Gatekeeper(db, LocalLimiter(), fx, poll_s=3600, unpriced=Unpriced(allow=True))
    priced = Gatekeeper(db, LocalLimiter(), fx, poll_s=3600, unpriced=Unpriced(
        SellPrice(Decimal(10), Decimal(30)), "CNY"))
    secret, info = await Registry(db).create_key("b", budgets=[parse_budget("1CNY/day")])
    plain, _ = await Registry(db).create_key("free")
    for g in (refuse, allow, priced):
        await g.start()
    try:
        caller = await refuse.authenticate(secret, "deepseek/made-up")
        with pytest.raises(UnpricedModel) as info_:
            await refuse.reserve(caller, "deepseek/made-up", None, "CNY", 200_000)
        assert info_.value.status == 403 and "unpriced_price" in info_.value.message
        # a key without a budget has nothing to protect
        assert await refuse.reserve(await refuse.authenticate(plain, "x"), "deepseek/made-up",
                                    None, "CNY", 200_000) is None
        # allowed: admitted at no charge (while the budget has something left)
        hold = await allow.reserve(await allow.authenticate(secret, "x"), "deepseek/made-up",
                                   None, "CNY", 200_000)
        assert hold is not None and hold.claims[0].amount == 0
        # priced: the worst case at the configured price (30 CNY/1M × 200k = 6 CNY > 1 CNY)
        caller = await priced.authenticate(secret, "x")
        with pytest.raises(BudgetExceeded, match=r"may cost up to 6\.3 CNY"):
            await priced.reserve(caller, "deepseek/made-up", None, "CNY", 200_000)
        hold = await priced.reserve(caller, "deepseek/made-up", None, "CNY", 10_000)
        rec = make_record(key_id=info.id, vendor="deepseek", model="made-up",
                          input_tokens=1000, output_tokens=1000, cost=Decimal(0))
        rec.price_period = "unpriced"
        priced.stamp(rec)  # charged at the configured price, the vendor cost stays 0
        assert (rec.charge, rec.charge_currency, rec.cost) == (Decimal("0.04"), "CNY", 0)
        await priced.settle(hold, rec)
        state = await priced.budget_status(priced.directory.budgets_of(info))
        assert (state[0]["spent"], state[0]["reserved"]) == ("0.04", "0")
    finally:
        for g in (refuse, allow, priced):
            await g.close()


async def test_the_dearest_candidate_is_reserved(gate: Gatekeeper) -> None:
    from kanjia.metering import WorstCase

    secret, _ = await gate.registry.create_key("f", models=["deepseek/*"],
                                               budgets=[parse_budget("10CNY/day")])
    await gate.refresh()
    caller = await gate.authenticate(secret, "cheap-chat")  # a route it is not given
    assert not gate.may_use(caller, "openai/gpt-4o")  # so each candidate is judged
    assert gate.may_use(caller, "deepseek/deepseek-chat")
    hold = await gate.reserve(caller, "deepseek/deepseek-chat", Decimal("0.1"), "CNY", 10,
                              others=[WorstCase("deepseek/deepseek-reasoner", Decimal("0.1"),
                                                "USD", 10)])
    assert hold is not None and hold.claims[0].amount == 735_000_000  # 0.7 CNY × 1.05
