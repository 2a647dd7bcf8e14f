"""Done-when: ``kill -9`` under load loses no finished request and counts none twice, on
SQLite and PostgreSQL; SIGTERM flushes everything.

The gateways here write to the database only every 30 s (or per 2000 rows), so the
last rows answered before the kill reach the ledger only through the journal's replay.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from tests.metering._gateway import GatewayProcess, Load, Outcome, chat_body, post_chat

from kanjia.ledger.store import open_database
from kanjia.sandbox import SandboxThread

BODY = chat_body(16, text="crash test")


async def _ids(database: str) -> list[str]:
    db = open_database(database)
    await db.connect()
    try:
        return [r[0] for r in await db.fetch("SELECT request_id FROM usage_records")]
    finally:
        await db.close()


async def _post_stream(session: aiohttp.ClientSession, url: str) -> Outcome:
    """A streamed request; acknowledged once its final frame (``[DONE]``) has arrived."""
    body = {**BODY, "stream": True}
    async with session.post(url + "/v1/chat/completions", json=body) as resp:
        data = await resp.read()
        ok = resp.status == 200 and data.rstrip().endswith(b"data: [DONE]")
        return Outcome(200 if ok else resp.status or 599,
                       resp.headers.get("x-kanjia-request-id"), time.time())


async def _load_until(url: str, stop: asyncio.Event, load: Load, workers: int = 16) -> None:
    """Back-to-back requests from ``workers`` clients, a quarter of them streamed."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        async def worker(i: int) -> None:
            while not stop.is_set():
                try:
                    load.outcomes.append(await _post_stream(s, url) if i % 4 == 3
                                         else await post_chat(s, url, BODY, None))
                except (TimeoutError, aiohttp.ClientError):
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(worker(i) for i in range(workers)))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "ledger.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture()
def procs() -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    yield started
    for p in started:
        p.stop()


async def kill_9_run(sandbox_url: str, database: str, journal: Path, logs: Path,
                     procs: list[GatewayProcess], seconds: float = 2.0) -> dict[str, float]:
    """One run: load, ``kill -9`` mid-load, restart (which replays the journal); returns
    how many requests the clients saw succeed, how many of those the ledger lacks, and
    how many rows it counts twice. Also used by ``bench/reliability.py``."""
    gw = GatewayProcess(sandbox_url, database, journal, logs / "gw.log", flush_s=30)
    procs.append(gw.start())
    load, stop = Load(), asyncio.Event()
    task = asyncio.ensure_future(_load_until(gw.url, stop, load))
    while len(load.ok()) < 50:  # wait until the load is on
        await asyncio.sleep(0.05)
    await asyncio.sleep(seconds)
    killed_at = time.time()
    gw.kill9()
    stop.set()
    await task
    acked = {o.request_id for o in load.ok()}
    before = set(await _ids(database))
    again = GatewayProcess(sandbox_url, database, journal, logs / "gw2.log")
    procs.append(again.start())  # replays the journal before it serves
    ids = await _ids(database)
    assert again.terminate()
    after = await _ids(database)
    assert sorted(after) == sorted(ids)  # nothing replayed twice
    assert not list(journal.iterdir())
    last_ack = max((o.done_at for o in load.ok()), default=killed_at)
    return {"acknowledged": len(acked), "recorded": len(acked & set(ids)),
            "missing": len(acked - set(ids)), "duplicates": len(ids) - len(set(ids)),
            "replayed": len(acked - before),
            "last_ack_before_kill_ms": round((killed_at - last_ack) * 1000, 1)}


async def test_kill_9_under_load(sandbox: SandboxThread, tmp_path: Path, database: str,
                                 procs: list[GatewayProcess]) -> None:
    """F8: every request a client saw succeed (chat, and streams up to their final frame)
    is in the ledger after ``kill -9`` and a restart, none twice: 5 runs on SQLite, one
    on PostgreSQL. The rows of the last 30 s reach the database only through the
    journal's replay."""
    runs = 5 if not database.startswith("postgresql") else 1
    for run in range(runs):
        logs = tmp_path / f"run{run}"
        logs.mkdir()
        got = await kill_9_run(sandbox.url, database, tmp_path / "journal", logs, procs)
        print(f"kill -9 run {run}: {got}")
        assert got["acknowledged"] > 100
        assert got["replayed"] > 0  # the journal, not the database, had them
        assert got["missing"] == 0, got
        assert got["duplicates"] == 0, got


async def test_sigterm_flushes(sandbox: SandboxThread, tmp_path: Path,
                               procs: list[GatewayProcess]) -> None:
    database = str(tmp_path / "ledger.db")
    journal = tmp_path / "journal"
    gw = GatewayProcess(sandbox.url, database, journal, tmp_path / "gw.log", flush_s=30)
    procs.append(gw.start())
    async with aiohttp.ClientSession() as s:
        outcomes = await asyncio.gather(*(post_chat(s, gw.url, BODY, None) for _ in range(50)))
    assert {o.status for o in outcomes} == {200}
    assert gw.terminate()
    assert sorted(await _ids(database)) == sorted(str(o.request_id) for o in outcomes)
    assert not list(journal.iterdir())


async def test_ctrl_c_under_load_writes_every_acknowledged_record(
        sandbox: SandboxThread, tmp_path: Path, procs: list[GatewayProcess]) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) during load: the
    gateway and its writer process stop cleanly, every request a client saw succeed is in
    the ledger, no "will retry", no traceback, no journal or lock file left behind."""
    database = str(tmp_path / "ledger.db")
    journal = tmp_path / "journal"
    gw = GatewayProcess(sandbox.url, database, journal, tmp_path / "gw.log", flush_s=30,
                        own_group=True)
    procs.append(gw.start())
    assert gw.proc is not None
    load, stop = Load(), asyncio.Event()
    task = asyncio.ensure_future(_load_until(gw.url, stop, load))
    while len(load.ok()) < 100:  # wait until the load is on
        await asyncio.sleep(0.05)
    os.killpg(gw.proc.pid, signal.SIGINT)
    rc = await asyncio.to_thread(gw.proc.wait, 30)
    stop.set()
    await task
    log = gw.log.read_text()
    acked = {o.request_id for o in load.ok()}
    ids = await _ids(database)
    print(f"ctrl-c: {len(acked)} acknowledged, {len(acked & set(ids))} recorded, rc {rc}")
    assert len(acked) >= 100
    assert acked <= set(ids), f"{len(acked - set(ids))} acknowledged requests missing"
    assert len(ids) == len(set(ids))
    assert "Traceback" not in log and "will retry" not in log, log[-2000:]
    left = sorted(p.name for p in journal.iterdir()) if journal.exists() else []
    assert left == [], left   # no journal segment or owner lock file left behind
