"""Done-when, batch path: 200 deferred jobs queued by a key whose budget covers about 50,
sent by the gateway's own runner as that key. Each is reserved before its call and
settled after; the jobs the budget refuses fail with ``budget_exceeded``; the ledger's
spend ends within one reservation of the budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from tests.metering._gateway import MASTER, admin, chat_body

from kanjia.batch import JobQueue
from kanjia.config import load_settings
from kanjia.ledger.store import open_database
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app

BODY = chat_body(40, text="batch race [[sandbox:latency_ms=100]]")


@pytest.fixture()
def gw(sandbox: SandboxThread, tmp_path: Path) -> Iterator[tuple[ServerThread, str, Path]]:
    database, queue = str(tmp_path / "ledger.db"), tmp_path / "queue.db"
    settings = load_settings(None, sandbox_url=sandbox.url, database=database,
                             batch_queue=str(queue))
    app = build_app(settings, env={"KANJIA_MASTER_KEY": MASTER,
                                   "KANJIA_JOURNAL_DIR": str(tmp_path / "journal"),
                                   "KANJIA_LEDGER_FLUSH_S": "0.05"})
    with ServerThread(app) as srv:
        yield srv, database, queue


async def _spend(database: str, key_id: str) -> tuple[Decimal, int]:
    db = open_database(database)
    await db.connect()
    try:
        ((nano, count),) = await db.fetch(
            "SELECT SUM(charge_nano), COUNT(*) FROM usage_records WHERE key_id = ? "
            "AND status = 200", (key_id,))
        return Decimal(int(nano or 0)) / Decimal(10**9), int(count)
    finally:
        await db.close()


async def test_batch_jobs_of_a_key_hold_its_budget(
        gw: tuple[ServerThread, str, Path]) -> None:
    srv, database, queue_path = gw
    async with aiohttp.ClientSession() as s:
        async with s.post(srv.url + "/v1/chat/completions", json=BODY,
                          headers={"Authorization": f"Bearer {MASTER}"}) as resp:
            assert resp.status == 200
            cost = Decimal(resp.headers["x-kanjia-cost"].split()[0])
        budget = cost * 50
        status, made = await admin(s, srv.url, "POST", "/admin/keys",
                                   {"name": "batcher", "budget": f"{budget}CNY/day"})
        assert status == 201
        queue = JobQueue(queue_path)  # as if 200 deferred requests had been queued
        try:
            for _ in range(200):
                queue.add(batch_id="race", model=BODY["model"], body=BODY, send_at=0,
                          route=None, target="deepseek/deepseek-chat", cost_now=None,
                          cost_then=None, currency=None, key_id=made["id"])
            async with s.get(srv.url + "/v1/kanjia/jobs/none") as resp:  # opens the runner
                assert resp.status == 404
            deadline = time.monotonic() + 60
            while (counts := queue.counts("race")).get("queued") or counts.get("sent"):
                assert time.monotonic() < deadline, counts
                await asyncio.sleep(0.1)
            jobs = queue.jobs("race")
        finally:
            queue.close()
    done = [j for j in jobs if j.status == "done"]
    failed = [j for j in jobs if j.status == "failed"]
    assert {(j.error or "").split(":")[0] for j in failed} == {"budget_exceeded"}
    for _ in range(100):  # the ledger's batched writes land shortly after the calls
        spend, count = await _spend(database, made["id"])
        if count >= len(done):
            break
        await asyncio.sleep(0.1)
    assert count == len(done)
    reservation = cost * Decimal("1.1")
    print(f"race (batch, 1 instance): {len(done)} ok; spend {spend} of budget {budget}; "
          f"overspend {max(Decimal(0), spend - budget)}; reservation ~{reservation}")
    assert budget / Decimal("1.1") - reservation <= spend <= budget + reservation
    assert 40 <= len(done) <= 52
