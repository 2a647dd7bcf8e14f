"""Done-when: 200 parallel requests at a key whose budget covers about 50; the ledger's
spend ends within one reservation of the budget. On one gateway process, and on two
processes sharing the budget through Redis (and a PostgreSQL ledger)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from tests.metering._gateway import MASTER, GatewayProcess, admin, chat_body, post_chat

from kanjia.metering.store import open_database
from kanjia.sandbox import SandboxThread

# each request: the same prompt, exactly max_tokens of output, slow enough to overlap
BODY = chat_body(40, text="budget race [[sandbox:latency_ms=300]]")


async def _ledger_spend(database: str, key_id: str, expected: int) -> tuple[Decimal, int]:
    """The key's spend once the ledger holds ``expected`` rows (writes are batched off the
    request path, so they land shortly after the responses), or after 10 s."""
    db = open_database(database)
    await db.connect()
    try:
        for _ in range(100):
            await asyncio.sleep(0.1)
            ((nano, count),) = await db.fetch(
                "SELECT SUM(charge_nano), COUNT(*) FROM usage_records WHERE key_id = ? "
                "AND status = 200", (key_id,))
            if count >= expected:
                break
        return Decimal(int(nano or 0)) / Decimal(10**9), int(count)
    finally:
        await db.close()


async def _race(urls: list[str], database: str) -> None:
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as s:
        probe = await post_chat(s, urls[0], BODY, MASTER)  # the master key is not budgeted
        assert probe.status == 200
        async with s.post(urls[0] + "/v1/chat/completions", json=BODY,
                          headers={"Authorization": f"Bearer {MASTER}"}) as resp:
            cost = Decimal(resp.headers["x-kanjia-cost"].split()[0])
        budget = cost * 50
        status, made = await admin(s, urls[0], "POST", "/admin/keys",
                                   {"name": "racer", "budget": f"{budget}CNY/day"})
        assert status == 201
        outcomes = await asyncio.gather(*(post_chat(s, urls[i % len(urls)], BODY, made["key"])
                                          for i in range(200)))
    ok = [o for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status != 200]
    assert {(o.status, o.code) for o in refused} == {(429, "budget_exceeded")}
    spend, count = await _ledger_spend(database, made["id"], len(ok))
    assert count == len(ok)
    reservation = cost * Decimal("1.1")  # max cost (prompt estimate + max_tokens) + 5% margin
    assert budget - 2 * reservation <= spend <= budget + reservation, (spend, budget, len(ok))
    print("race:", len(ok), "ok; spend", spend, "budget", budget, "reservation~", reservation)
    assert 40 <= len(ok) <= 52


@pytest.fixture()
def procs() -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    yield started
    for p in started:
        p.stop()


async def test_one_instance(sandbox: SandboxThread, tmp_path: Path,
                            procs: list[GatewayProcess]) -> None:
    database = str(tmp_path / "ledger.db")
    gw = GatewayProcess(sandbox.url, database, tmp_path / "j", tmp_path / "gw.log")
    procs.append(gw.start())
    await _race([gw.url], database)


async def test_two_instances_share_the_budget_through_redis(
        sandbox: SandboxThread, tmp_path: Path, procs: list[GatewayProcess], pg_url: str,
        redis_url: str) -> None:
    for i in range(2):
        gw = GatewayProcess(sandbox.url, pg_url, tmp_path / f"j{i}", tmp_path / f"gw{i}.log",
                            redis=redis_url)
        procs.append(gw.start())
    await _race([p.url for p in procs], pg_url)
