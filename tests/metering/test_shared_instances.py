"""Two gateway instances sharing Redis and PostgreSQL (issue 21's done-when): a breaker
opened on one is seen by the other within a second; 400 concurrent requests against a
budget overspend it by at most the documented bound (one request's reservation)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from tests._services import pg_url_for, redis_url_for
from tests.metering._gateway import MASTER, GatewayProcess, admin, post_chat
from tests.metering.test_budget_race import BODY, _call, _ledger_spend

from kanjia.sandbox import SandboxThread


@pytest.fixture(scope="module")
def shared_pg_url(pg_schema: str) -> str:
    """The pair's ledger: one PostgreSQL schema for this module."""
    return pg_url_for(f"{pg_schema}_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def pair(sandbox: SandboxThread, tmp_path_factory: pytest.TempPathFactory, shared_pg_url: str,
         redis_base: str) -> Iterator[list[GatewayProcess]]:
    """Two instances on one ledger and one Redis prefix, started once for the module (each
    test uses keys of its own; only the breaker test opens a breaker, on a vendor no other
    test here calls)."""
    logs = tmp_path_factory.mktemp("shared-instances")
    redis_url = redis_url_for(f"{redis_base}-{uuid.uuid4().hex[:8]}")
    started: list[GatewayProcess] = []
    try:
        for i in range(2):
            started.append(GatewayProcess(sandbox.url, shared_pg_url, logs / f"j{i}",
                                          logs / f"gw{i}.log", redis=redis_url).start())
        yield started
    finally:
        for p in started:
            p.stop()


def _faults(sandbox: SandboxThread, rule: dict[str, Any] | None) -> None:
    req = urllib.request.Request(
        sandbox.url + "/_sandbox/faults", json.dumps(rule).encode() if rule else None,
        {"Content-Type": "application/json"}, method="POST" if rule else "DELETE")
    urllib.request.urlopen(req).close()


async def _state(s: aiohttp.ClientSession, url: str, vendor: str) -> str:
    status, body = await admin(s, url, "GET", "/status")
    assert status == 200
    return str(next(d["state"] for d in body["deployments"] if d["vendor"] == vendor))


async def test_a_breaker_opened_on_one_instance_is_seen_by_the_other_within_a_second(
        sandbox: SandboxThread, pair: list[GatewayProcess]) -> None:
    a, b = pair
    body = {**BODY, "model": "moonshot/kimi-k2-0905-preview"}
    _faults(sandbox, {"vendor": "moonshot", "fault": "server_error"})
    try:
        async with aiohttp.ClientSession() as s:
            assert await _state(s, b.url, "moonshot") == "closed"
            for _ in range(20):  # until a's breaker opens (5 failures by default)
                await post_chat(s, a.url, body, MASTER)
                if await _state(s, a.url, "moonshot") == "open":
                    break
            opened = time.monotonic()
            assert await _state(s, a.url, "moonshot") == "open"
            while await _state(s, b.url, "moonshot") != "open":
                assert time.monotonic() - opened < 1.0, "b did not see a's breaker in 1 s"
                await asyncio.sleep(0.01)
            seen = time.monotonic() - opened
            print(f"breaker opened on a, seen by b after {seen * 1000:.0f} ms")
    finally:
        _faults(sandbox, None)


async def test_400_concurrent_requests_overspend_at_most_one_reservation(
        pair: list[GatewayProcess], shared_pg_url: str) -> None:
    urls = [p.url for p in pair]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        async with s.post(urls[0] + "/v1/chat/completions", json=BODY,
                          headers={"Authorization": f"Bearer {MASTER}"}) as resp:
            assert resp.status == 200
            cost, currency = resp.headers["x-kanjia-cost"].split()[:2]
        budget = Decimal(cost) * 100
        status, made = await admin(s, urls[0], "POST", "/admin/keys",
                                   {"name": f"race400-{uuid.uuid4().hex[:6]}",
                                    "budget": f"{budget:.9f}{currency}/day"})
        assert status == 201
        outcomes = await asyncio.gather(*(_call(s, urls[i % 2], "/v1/chat/completions",
                                                BODY, made["key"]) for i in range(400)))
    ok = [o for o in outcomes if o.status == 200]
    assert {(o.status, o.code) for o in outcomes if o.status != 200} == \
        {(429, "budget_exceeded")}
    spend, count = await _ledger_spend(shared_pg_url, made["id"], len(ok))
    assert count == len(ok)
    reservation = Decimal(cost) * Decimal("1.1")
    print(f"400 concurrent on 2 instances: {len(ok)} ok; spend {spend} of {budget}; "
          f"overspend {max(Decimal(0), spend - budget)} (bound: one reservation, "
          f"~{reservation})")
    assert spend <= budget + reservation
    assert budget / Decimal("1.1") - reservation <= spend


async def test_a_rate_limit_the_database_cannot_hold_is_a_400_not_a_500(
        pair: list[GatewayProcess]) -> None:
    async with aiohttp.ClientSession() as s:
        status, body = await admin(s, pair[0].url, "POST", "/admin/keys",
                                   {"name": "huge", "tpm": 10_000_000_000})
        assert status == 400 and "rpm and tpm must be from 1 to" in body["error"]["message"]
        status, _ = await admin(s, pair[0].url, "POST", "/admin/keys",
                                {"name": "big", "tpm": 2**31 - 1})
        assert status == 201
