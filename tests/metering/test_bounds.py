"""Amounts that cannot overflow a counter: F5 (Redis integer overflow failing whole
batches) and F13 (tenant prices, markups and budget amounts accepted, then breaking the
ledger, the tenant's requests or the admin API)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import orjson
import pytest
from tests.ledger._records import make_record
from tests.metering._gateway import MASTER, admin
from tests.metering.conftest import FixedFx

from kanjia.config import load_settings
from kanjia.errors import BudgetExceeded, ConfigError
from kanjia.ledger.store import Database
from kanjia.metering import Gatekeeper, LocalLimiter, PriceList, RedisLimiter, parse_budget
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app

# -- F5: the Redis scripts -------------------------------------------------------------------


@pytest.fixture()
async def redis_limiter(redis_url: str) -> AsyncIterator[RedisLimiter]:
    lim = RedisLimiter(redis_url, hold_ttl_s=60)
    await lim.seed({}, complete=True)
    yield lim
    await lim.clear()
    await lim.close()


async def test_f5_one_bad_operation_does_not_fail_its_batch(
        redis_limiter: RedisLimiter) -> None:
    """A poisoned amount (too large for a Redis integer) fails its own operation only;
    the operations batched with it go through, and nothing of it was written."""
    w = f"w-{uuid.uuid4().hex}"
    keys = [f"{redis_limiter.prefix}:alive", *redis_limiter._rate_keys(None),
            *redis_limiter._w(w)]
    now = time.time()

    def args(hold: str, amount: str) -> list[str]:
        return [repr(now), hold, repr(now + 60), "", "", "0", "1.0", "1000", amount, "3600"]

    results = await redis_limiter._send([
        ("a", keys, args("bad", "1" + "0" * 24)),
        ("a", keys, args("good", "10")),
        ("s", [keys[3], *redis_limiter._w(w)], ["good", "", "7" + "0" * 30, ""]),
        ("s", [keys[3], *redis_limiter._w(w)], ["good", "", "7", ""]),
    ])
    assert [int(r[0]) for r in results] == [-2, 0, -2, 0]
    assert (await redis_limiter.windows([w]))[w] == (7, 0)


async def test_f5_a_huge_request_is_refused_and_its_neighbours_are_served(
        db: Database, fx: FixedFx, redis_limiter: RedisLimiter) -> None:
    """max_tokens 10**18 with n 128 used to overflow the counters: the script error failed
    every admission and settlement batched with it (1,215 503s, 22% of spend lost)."""
    gate = Gatekeeper(db, redis_limiter, fx, poll_s=3600)
    await gate.start()
    try:
        secret, info = await gate.registry.create_key("victim",
                                                      budgets=[parse_budget("100CNY/day")],
                                                      tpm=10**9)
        await gate.refresh()
        caller = await gate.authenticate(secret, "deepseek/deepseek-chat")

        async def normal() -> None:
            hold = await gate.reserve(caller, "deepseek/deepseek-chat", Decimal("0.01"),
                                      "CNY", 100)
            await asyncio.sleep(0)
            gate.settle_soon(hold, make_record(key_id=info.id, cost=Decimal("0.005")))

        async def huge() -> str:
            try:
                await gate.reserve(caller, "deepseek/deepseek-chat",
                                   Decimal(10**18 * 128 * 4) / 10**6, "CNY", 10**18 * 128)
            except BudgetExceeded as exc:
                return exc.code
            return "admitted"

        out = await asyncio.gather(*(normal() for _ in range(100)),
                                   *(huge() for _ in range(20)))
        assert out[100:] == ["budget_exceeded"] * 20
        await gate.drain()
        state = await gate.budget_status(gate.directory.budgets_of(info))
        assert (Decimal(state[0]["spent"]), state[0]["reserved"]) == (Decimal("0.5"), "0")
    finally:
        await gate.close()


async def test_budget_windows_hold_the_largest_budget(db: Database, fx: FixedFx) -> None:
    gate = Gatekeeper(db, LocalLimiter(), fx, poll_s=3600)
    await gate.start()
    try:
        secret, _ = await gate.registry.create_key("rich",
                                                   budgets=[parse_budget("1000000000CNY/day")])
        await gate.refresh()
        caller = await gate.authenticate(secret, "m")
        hold = await gate.reserve(caller, "deepseek/deepseek-chat", Decimal(10**30), "CNY", 1)
        raise AssertionError(f"admitted {hold}")
    except BudgetExceeded:
        pass
    finally:
        await gate.close()


def test_claims_are_capped() -> None:
    from kanjia.metering._money import MAX_NANO, to_nano_capped

    assert to_nano_capped(Decimal("1e999999999")) == MAX_NANO + 1  # above any budget
    assert to_nano_capped(Decimal(10**9)) == MAX_NANO  # the largest budget itself
    assert to_nano_capped(Decimal("-1")) == 0
    assert to_nano_capped(Decimal("0.5")) == 500_000_000


# -- F13: bounds at the CLI and the admin API --------------------------------------------------


def test_f13_parsers_refuse_absurd_amounts() -> None:
    with pytest.raises(ConfigError, match="at most"):
        parse_budget("12345678901234567890123CNY/day")
    with pytest.raises(ConfigError, match="9 decimal places"):
        parse_budget("0.0000000001CNY/day")
    assert parse_budget("1000000000CNY/day").amount == Decimal(10**9)
    with pytest.raises(ConfigError, match="per 1M tokens"):
        PriceList.parse({"currency": "CNY", "models": {"*": {"input_mtok": 1e15,
                                                             "output_mtok": 1}}})
    with pytest.raises(ConfigError, match="expected a number"):
        PriceList.parse({"currency": "CNY", "models": {"*": {"input_mtok": True,
                                                             "output_mtok": 1}}})


def _kanjia(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kanjia", *args], capture_output=True,
                          text=True, env=os.environ, timeout=60)


def test_f13_cli_refuses_with_one_line(tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    prices = tmp_path / "p.json"
    prices.write_text(orjson.dumps({"currency": "CNY", "models": {
        "deepseek/*": {"input_mtok": 1e15, "output_mtok": 1}}}).decode())
    for args in (["keys", "create", "--name", "a", "--budget", "12345678901234567890123CNY/day"],
                 ["keys", "tenant", "t", "--markup", "1e999999999"],
                 ["keys", "tenant", "t", "--markup", "0"],
                 ["keys", "tenant", "t", "--prices", str(prices)],
                 ["keys", "budget", "t", "99999999999CNY/month", "--tenant"]):
        done = _kanjia(*args, "--db", db)
        assert done.returncode != 0, args
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
        assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def gw(sandbox: SandboxThread, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[ServerThread]:
    root = tmp_path_factory.mktemp("bounds")
    settings = load_settings(None, sandbox_url=sandbox.url, database=str(root / "l.db"))
    app = build_app(settings, env={"KANJIA_MASTER_KEY": MASTER,
                                   "KANJIA_JOURNAL_DIR": str(root / "journal"),
                                   "KANJIA_LEDGER_FLUSH_S": "0.05"})
    with ServerThread(app) as srv:
        yield srv


async def test_f13_admin_api_refuses_with_a_400(gw: ServerThread) -> None:
    async with aiohttp.ClientSession() as s:
        for method, path, body, expected in (
                ("PUT", "/admin/tenants/t", {"markup": "1e999999999"}, "markup"),
                ("PUT", "/admin/tenants/t", {"markup": 1e300}, "markup"),
                ("PUT", "/admin/tenants/t", {"price_list": {"currency": "CNY", "models": {
                    "*": {"input_mtok": 1e15, "output_mtok": 1}}}}, "per 1M tokens"),
                ("POST", "/admin/keys", {"name": "x", "budget": "1" * 23 + "CNY/day"},
                 "at most"),
                ("POST", "/admin/budgets", {"scope": "tenant", "subject": "t",
                                            "budget": "1" * 23 + "CNY/day"}, "at most"),
                ("POST", "/admin/keys", {"name": "x", "rpm": 10**30}, "rpm")):
            status, got = await admin(s, gw.url, method, path, body)
            assert status == 400, (path, body, got)
            assert expected in got["error"]["message"], got
        # at the bounds, a tenant's requests are still billed and recorded
        status, _ = await admin(s, gw.url, "PUT", "/admin/tenants/big", {
            "markup": "1000", "budget": "1000000000CNY/month"})
        assert status == 200
        status, made = await admin(s, gw.url, "POST", "/admin/keys",
                                   {"name": "big", "tenant": "big"})
        assert status == 201
        body = {"model": "deepseek/deepseek-chat", "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}]}
        async with s.post(gw.url + "/v1/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {made['key']}"}) as resp:
            assert resp.status == 200


async def test_f13_a_markup_stored_before_the_bounds_fails_before_the_vendor(
        db: Database, fx: FixedFx) -> None:
    """A markup of 1e999999999 or a price of 1e15 written by an older version: the gateway
    still starts, the tenant's requests are refused before any vendor is called (they
    used to 500 after it), and other tenants' go on."""
    gate = Gatekeeper(db, LocalLimiter(), fx, poll_s=3600)
    await gate.start()
    try:
        await gate.registry.set_tenant("old", markup=Decimal(2))
        await db.execute("UPDATE tenants SET markup = ? WHERE name = ?", ("1e999999999", "old"))
        await gate.registry.set_tenant("older")
        await db.execute("UPDATE tenants SET price_list = ? WHERE name = ?", (orjson.dumps(
            {"currency": "CNY", "models": {"*": {"input_mtok": 1e15, "output_mtok": 1}}}
        ).decode(), "older"))
        secret, _ = await gate.registry.create_key("c", tenant="old",
                                                   budgets=[parse_budget("1CNY/day")])
        unbudgeted, _ = await gate.registry.create_key("e", tenant="older")
        other, _ = await gate.registry.create_key("d", budgets=[parse_budget("1CNY/day")])
        await gate.refresh()  # loading them does not fail (nor would a restart)
        for key in (secret, unbudgeted):
            with pytest.raises(ConfigError, match="unusable markup or price list"):
                await gate.reserve(await gate.authenticate(key, "m"), "deepseek/deepseek-chat",
                                   Decimal("0.01"), "CNY", 10)
        assert await gate.reserve(await gate.authenticate(other, "m"),
                                  "deepseek/deepseek-chat", Decimal("0.01"), "CNY", 10)
    finally:
        await gate.close()
