"""F9: a journal that cannot write (here "too many open files") never loses a row silently.

The gateway notices at once: ``/healthz`` turns red (503) and new requests are refused
with a clear 503 ``ledger_unavailable`` instead of being answered without a record; the
journal thread keeps retrying with backoff, and once the error is gone it rewrites the
rows it held, the health check is green again and requests are served. Every request
answered with a 200 is in the ledger.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from tests.metering._gateway import MASTER, chat_body, post_chat

from kanjia.config import load_settings
from kanjia.ledger import _journal
from kanjia.ledger.store import open_database
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app


@pytest.fixture()
def gw(sandbox: SandboxThread, tmp_path: Path) -> Iterator[tuple[ServerThread, str]]:
    database = str(tmp_path / "ledger.db")
    settings = load_settings(None, sandbox_url=sandbox.url, database=database)
    app = build_app(settings, env={"KANJIA_MASTER_KEY": MASTER,
                                   "KANJIA_JOURNAL_DIR": str(tmp_path / "journal"),
                                   "KANJIA_LEDGER_FLUSH_S": "0.05"})
    with ServerThread(app) as srv:
        yield srv, database


async def _health(s: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, object]]:
    async with s.get(url + "/healthz") as resp:
        return resp.status, await resp.json()


async def _ids(database: str) -> set[str]:
    db = open_database(database)
    await db.connect()
    try:
        return {r[0] for r in await db.fetch("SELECT request_id FROM usage_records")}
    finally:
        await db.close()


async def test_journal_errors_fail_loudly_and_recover(
        gw: tuple[ServerThread, str], monkeypatch: pytest.MonkeyPatch) -> None:
    srv, database = gw
    real = _journal._write_all
    failing = {"on": False}

    def write_all(fd: int, data: bytes) -> None:
        if failing["on"]:
            raise OSError(errno.EMFILE, "Too many open files")
        real(fd, data)

    monkeypatch.setattr(_journal, "_write_all", write_all)
    body = chat_body(8)
    answered: list[str] = []
    async with aiohttp.ClientSession() as s:
        first = await post_chat(s, srv.url, body, None)
        assert first.status == 200 and first.request_id
        answered.append(first.request_id)
        assert (await _health(s, srv.url))[0] == 200

        failing["on"] = True
        # this request was admitted before the journal broke: answered, its row held
        hit = await post_chat(s, srv.url, body, None)
        assert hit.status == 200 and hit.request_id
        answered.append(hit.request_id)
        status, health = await _health(s, srv.url)
        assert status == 503 and health["status"] == "failing"
        assert "Too many open files" in str(health["problems"])
        refused = await asyncio.gather(*(post_chat(s, srv.url, body, None) for _ in range(5)))
        assert {(o.status, o.code) for o in refused} == {(503, "ledger_unavailable")}
        async with s.post(srv.url + "/v1/embeddings", json={
                "model": "qwen/text-embedding-v3", "input": "x"}) as resp:
            assert resp.status == 503
            assert (await resp.json())["error"]["code"] == "ledger_unavailable"

        failing["on"] = False  # the thread's next retry repairs the journal
        deadline = time.monotonic() + 15
        while (await _health(s, srv.url))[0] != 200:
            assert time.monotonic() < deadline, "the journal did not recover"
            await asyncio.sleep(0.05)
        again = await post_chat(s, srv.url, body, None)
        assert again.status == 200 and again.request_id
        answered.append(again.request_id)

    deadline = time.monotonic() + 10
    while not set(answered) <= await _ids(database):
        assert time.monotonic() < deadline, "answered requests missing from the ledger"
        await asyncio.sleep(0.05)
    metering = srv.app.services.metering
    assert metering is not None
    journal = metering.ledger.journal
    assert journal.failures == 1 and journal.repairs >= 1 and journal.dropped == 0
