"""Done-when: 200 parallel requests at a key whose budget covers about 50; the ledger's
spend ends within one reservation of the budget. On one gateway process, and on two
processes sharing the budget through Redis (and a PostgreSQL ledger); on every path:
chat, stream, embeddings (here) and deferred batch work (test_budget_batch.py)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.metering._gateway import (
    MASTER,
    GatewayProcess,
    Outcome,
    admin,
    chat_body,
    post_chat,
)

from kanjia.ledger.store import open_database
from kanjia.sandbox import SandboxThread

# each request: the same prompt, exactly max_tokens of output, slow enough to overlap
BODY = chat_body(40, text="budget race [[sandbox:latency_ms=300]]")
STREAM = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
# embeddings: their cost is their input (the sandbox answers them at once)
EMBED = {"model": "openai/text-embedding-3-small",
         "input": ["budget race: the quick brown fox jumps over the lazy dog " * 20] * 8}
# tools: ~10 KB of them on every request (they count as input, like the messages); each
# request's differ (see _unique), so no vendor prompt cache makes them cheaper than reserved
TOOLS = {**BODY, "tools": [{"type": "function", "function": {
    "name": f"lookup_{i}", "description": "Looks a record up by its identifier. " * 8,
    "parameters": {"type": "object"}}} for i in range(25)]}
# failover: an ordered route whose first (cheap) candidate fails, so every request falls
# over to its dearer second one
FAILOVER = {**BODY, "model": "fall-over"}
# the sandbox is a thread of the test process: under a loaded machine (parallel test workers)
# it accepts 200 connections slowly, which must not turn into the gateway's 504s
CONFIG = """
[server]
connect_timeout_s = 60.0

[routes.fall-over]
models = ["siliconflow/Qwen/Qwen2.5-7B-Instruct", "openai/gpt-4o-mini"]
objective = "ordered"
"""
PATHS = {"chat": ("/v1/chat/completions", BODY), "stream": ("/v1/chat/completions", STREAM),
         "embeddings": ("/v1/embeddings", EMBED), "tools": ("/v1/chat/completions", TOOLS),
         "failover": ("/v1/chat/completions", FAILOVER)}


def _unique(body: dict[str, Any], n: str) -> dict[str, Any]:
    """``body`` with its tools made its own (the first tool's name carries ``n``)."""
    if "tools" not in body:
        return body
    first = {**body["tools"][0], "function": {**body["tools"][0]["function"],
                                              "name": f"lookup_first_{n}"}}
    return {**body, "tools": [first, *body["tools"][1:]]}


async def _call(s: aiohttp.ClientSession, url: str, path: str, body: dict[str, Any],
                key: str) -> Outcome:
    """One request on ``path``; a stream is read to its end."""
    async with s.post(url + path, json=body, headers={"Authorization": f"Bearer {key}"}) as r:
        data = await r.read()
        code = None if r.status == 200 else json.loads(data)["error"]["code"]
        if r.status == 200 and body.get("stream"):
            assert data.rstrip().endswith(b"data: [DONE]"), data[-200:]
        return Outcome(r.status, r.headers.get("x-kanjia-request-id"), time.time(), code)


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


async def _race(urls: list[str], database: str, kind: str = "chat") -> None:
    path, body = PATHS[kind]
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as s:
        probe = await post_chat(s, urls[0], BODY, MASTER)  # the master key is not budgeted
        assert probe.status == 200
        if kind == "failover":  # the breaker of the failing candidate opens: the cost is
            for _ in range(10):  # then the dearer candidate's (as for the race)
                await post_chat(s, urls[0], FAILOVER, MASTER)
        run = uuid.uuid4().hex[:8]  # the sandbox's prompt cache lives as long as the session
        plain = _unique({k: v for k, v in body.items() if k not in ("stream", "stream_options")},
                        f"{run}-probe")
        async with s.post(urls[0] + path, json=plain,
                          headers={"Authorization": f"Bearer {MASTER}"}) as resp:
            cost = Decimal(resp.headers["x-kanjia-cost"].split()[0])
        currency = resp.headers["x-kanjia-cost"].split()[1]
        budget = cost * 50
        status, made = await admin(s, urls[0], "POST", "/admin/keys",
                                   {"name": "racer", "budget": f"{budget:.9f}{currency}/day"})
        assert status == 201
        outcomes = await asyncio.gather(*(_call(s, urls[i % len(urls)], path,
                                                _unique(body, f"{run}-{i}"), made["key"])
                                          for i in range(200)))
    ok = [o for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status != 200]
    assert {(o.status, o.code) for o in refused} == {(429, "budget_exceeded")}
    spend, count = await _ledger_spend(database, made["id"], len(ok))
    assert count == len(ok)
    reservation = cost * Decimal("1.1")  # max cost (prompt estimate + max_tokens) + 5% margin
    # a request is admitted only while its worst case fits: the budget is used up to the
    # reservations' margin over the real cost, and overspent by at most one reservation
    assert budget / Decimal("1.1") - reservation <= spend <= budget + reservation, \
        (spend, budget, len(ok))
    print(f"race ({kind}, {len(urls)} instance(s)): {len(ok)} ok; spend {spend} of budget "
          f"{budget}; overspend {max(Decimal(0), spend - budget)}; reservation ~{reservation}")
    assert 40 <= len(ok) <= 52


@pytest.fixture()
def procs() -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    yield started
    for p in started:
        p.stop()


@pytest.fixture()
def faults(sandbox: SandboxThread, kind: str) -> Iterator[None]:
    """For the failover path: the route's first candidate fails every request."""
    if kind != "failover":
        yield
        return
    rule = json.dumps({"vendor": "siliconflow", "fault": "server_error"}).encode()
    urllib.request.urlopen(urllib.request.Request(sandbox.url + "/_sandbox/faults", rule,
                                                  {"Content-Type": "application/json"}))
    try:
        yield
    finally:
        urllib.request.urlopen(urllib.request.Request(sandbox.url + "/_sandbox/faults",
                                                      method="DELETE"))


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "kanjia.toml"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize("kind", list(PATHS))
@pytest.mark.usefixtures("faults")
async def test_one_instance(sandbox: SandboxThread, tmp_path: Path,
                            procs: list[GatewayProcess], kind: str) -> None:
    database = str(tmp_path / "ledger.db")
    gw = GatewayProcess(sandbox.url, database, tmp_path / "j", tmp_path / "gw.log",
                        config=_config(tmp_path))
    procs.append(gw.start())
    await _race([gw.url], database, kind)


@pytest.mark.parametrize("kind", list(PATHS))
@pytest.mark.usefixtures("faults")
async def test_two_instances_share_the_budget_through_redis(
        sandbox: SandboxThread, tmp_path: Path, procs: list[GatewayProcess], pg_url: str,
        redis_url: str, kind: str) -> None:
    for i in range(2):
        gw = GatewayProcess(sandbox.url, pg_url, tmp_path / f"j{i}", tmp_path / f"gw{i}.log",
                            redis=redis_url, config=_config(tmp_path))
        procs.append(gw.start())
    await _race([p.url for p in procs], pg_url, kind)
