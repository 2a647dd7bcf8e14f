"""Batches under keys and budgets: the whole batch is reserved at submission (a batch that
cannot fit the key's budget is refused before anything is sent), files and batches
belong to the key that created them, ledger rows carry the key."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import openai
import pytest
from tests.metering._gateway import MASTER, admin

from kanjia.config import load_settings
from kanjia.ledger.store import open_database
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app


@pytest.fixture(scope="module")
def gw(sandbox: SandboxThread, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[tuple[ServerThread, str]]:
    root = tmp_path_factory.mktemp("batchgw")
    database = str(root / "ledger.db")
    settings = load_settings(None, sandbox_url=sandbox.url, database=database,
                             batch_queue=str(root / "kanjia-batch.db"),
                             server={"upstream_timeout_s": 5.0})
    app = build_app(settings, env={"KANJIA_MASTER_KEY": MASTER,
                                   "KANJIA_JOURNAL_DIR": str(root / "journal"),
                                   "KANJIA_LEDGER_FLUSH_S": "0.05"})
    app.services.batch_poll_s = 0.05
    with ServerThread(app) as srv:
        yield srv, database


def _key(srv: ServerThread, name: str, budget: list[str]) -> str:
    return _make_key(srv, name, budget)[0]


def _make_key(srv: ServerThread, name: str, budget: list[str]) -> tuple[str, str]:
    """A new key's secret and id."""
    async def make() -> tuple[str, str]:
        async with aiohttp.ClientSession() as s:
            status, made = await admin(s, srv.url, "POST", "/admin/keys",
                                       {"name": name, "budget": budget})
            assert status == 201, made
            return str(made["key"]), str(made["id"])
    return asyncio.run(make())


def _file(n: int, max_tokens: int) -> io.BytesIO:
    lines = [json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                         "body": {"model": "openai/gpt-4o-mini", "max_tokens": max_tokens,
                                  "messages": [{"role": "user", "content": f"q{i}"}]}})
             for i in range(n)]
    buf = io.BytesIO(("\n".join(lines) + "\n").encode())
    buf.name = "in.jsonl"
    return buf


def _client(srv: ServerThread, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.url + "/v1", api_key=key, max_retries=0, timeout=20)


async def _rows(database: str, key_id: str, n: int) -> list[dict[str, Any]]:
    db = open_database(database)
    await db.connect()
    try:
        for _ in range(200):
            rows = await db.fetch("SELECT endpoint, price_period, key_id FROM usage_records "
                                  "WHERE key_id = ?", (key_id,))
            if len(rows) >= n:
                return [dict(zip(("endpoint", "price_period", "key_id"), r, strict=True))
                        for r in rows]
            await asyncio.sleep(0.05)
    finally:
        await db.close()
    raise AssertionError("the batch's rows never reached the ledger")


def test_budget_refuses_a_batch_that_cannot_fit(gw: tuple[ServerThread, str]) -> None:
    srv, _ = gw
    key = _key(srv, "tiny", ["0.01USD/day"])
    client = _client(srv, key)
    # 20 lines x 10k output tokens of gpt-4o-mini at the batch price ($0.30/M) = $0.06:
    # the first lines fit the $0.01 budget, the batch as a whole does not
    f = client.files.create(file=_file(20, 10_000), purpose="batch")
    with pytest.raises(openai.APIStatusError) as info:
        client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                              completion_window="24h")
    assert info.value.status_code == 429 and "budget" in str(info.value.message)
    assert client.batches.list().data == []  # nothing was created, nothing sent
    # the refused batch gave back what its first lines held: three of them fit again
    small = client.files.create(file=_file(3, 10_000), purpose="batch")
    b = client.batches.create(input_file_id=small.id, endpoint="/v1/chat/completions",
                              completion_window="24h")
    assert b.status == "in_progress"


def test_owned_by_key_and_billed_to_it(gw: tuple[ServerThread, str]) -> None:
    srv, database = gw
    secret, key_id = _make_key(srv, "alice", ["10USD/day"])
    a = _client(srv, secret)
    b = _client(srv, _key(srv, "bob", ["10USD/day"]))
    f = a.files.create(file=_file(2, 50), purpose="batch")
    with pytest.raises(openai.NotFoundError):
        b.files.retrieve(f.id)
    with pytest.raises(openai.NotFoundError):
        b.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                         completion_window="24h")
    batch = a.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                             completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        b.batches.retrieve(batch.id)
    assert b.batches.list().data == []
    end = time.monotonic() + 20
    while (done := a.batches.retrieve(batch.id)).status not in ("completed", "failed"):
        assert time.monotonic() < end
        time.sleep(0.05)
    assert done.status == "completed" and done.output_file_id
    with pytest.raises(openai.NotFoundError):
        b.files.content(done.output_file_id)
    rows = asyncio.run(_rows(database, key_id, 2))
    assert all(r["endpoint"] == "batch" and r["price_period"].endswith("+batch") for r in rows)

