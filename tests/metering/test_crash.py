"""Done-when: ``kill -9`` under load loses no finished request and counts none twice, on
SQLite and PostgreSQL; SIGTERM flushes everything.

The gateways here write to the database only every 30 s (or per 2000 rows), so the
last rows answered before the kill reach the ledger only through the journal's replay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from tests.metering._gateway import GatewayProcess, Load, chat_body, post_chat

from kanjia.metering.store import open_database
from kanjia.sandbox import SandboxThread

BODY = chat_body(16, text="crash test")


async def _ids(database: str) -> list[str]:
    db = open_database(database)
    await db.connect()
    try:
        return [r[0] for r in await db.fetch("SELECT request_id FROM usage_records")]
    finally:
        await db.close()


async def _load_until(url: str, stop: asyncio.Event, load: Load, workers: int = 16) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        async def worker() -> None:
            while not stop.is_set():
                try:
                    load.outcomes.append(await post_chat(s, url, BODY, None))
                except (TimeoutError, aiohttp.ClientError):
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(worker() for _ in range(workers)))


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


async def test_kill_9_under_load(sandbox: SandboxThread, tmp_path: Path, database: str,
                                 procs: list[GatewayProcess]) -> None:
    journal = tmp_path / "journal"
    gw = GatewayProcess(sandbox.url, database, journal, tmp_path / "gw.log", flush_s=30)
    procs.append(gw.start())
    load, stop = Load(), asyncio.Event()
    task = asyncio.ensure_future(_load_until(gw.url, stop, load))
    await asyncio.sleep(2.5)
    killed_at = time.time()
    gw.kill9()
    stop.set()
    await task
    done = {o.request_id for o in load.ok()}
    settled = {o.request_id for o in load.ok() if o.done_at < killed_at - 1.0}
    assert len(settled) > 100
    before = set(await _ids(database))
    assert done - before  # answered, not yet in the database: only the journal has them

    again = GatewayProcess(sandbox.url, database, journal, tmp_path / "gw2.log")
    procs.append(again.start())  # replays the journal before it serves
    ids = await _ids(database)
    assert len(ids) == len(set(ids))
    missing = settled - set(ids)
    assert not missing, f"{len(missing)} finished requests lost"
    # in fact only the last few dozen milliseconds can be lost (one journal group)
    lost = [o for o in load.ok() if o.request_id in done - set(ids)]
    newest_lost = max((killed_at - o.done_at for o in lost), default=0.0)
    print(f"kill -9: {len(done)} answered, {len(lost)} lost, all within "
          f"{newest_lost * 1000:.0f} ms of the kill")
    assert newest_lost < 0.5
    assert again.terminate()
    ids_after = await _ids(database)
    assert sorted(ids_after) == sorted(ids)  # nothing replayed twice
    assert not list(journal.iterdir())


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
