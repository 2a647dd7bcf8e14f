"""A virtual key can turn the response cache on for its requests; hits reach the ledger
database with cost 0, ``cache_hit`` and ``saved``."""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from tests.metering._gateway import MASTER

from kanjia.config import load_settings
from kanjia.ledger.store import open_database
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app


def _post(url: str, path: str, body: dict[str, Any], key: str,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json",
                                                  "authorization": f"Bearer {key}",
                                                  **(headers or {})})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


@pytest.fixture(scope="module")
def gw(sandbox: SandboxThread, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[tuple[ServerThread, str]]:
    root = tmp_path_factory.mktemp("rc-keys")
    database = str(root / "ledger.db")
    settings = load_settings(None, sandbox_url=sandbox.url, database=database,
                             server={"upstream_timeout_s": 5.0, "first_byte_timeout_s": 5.0})
    app = build_app(settings, env={"KANJIA_MASTER_KEY": MASTER,
                                   "KANJIA_JOURNAL_DIR": str(root / "journal"),
                                   "KANJIA_LEDGER_FLUSH_S": "0.05"})
    with ServerThread(app) as srv:
        yield srv, database


async def _row(database: str, rid: str) -> tuple[Any, ...]:
    db = open_database(database)
    await db.connect()
    try:
        for _ in range(200):
            rows = await db.fetch("SELECT cache_hit, saved_nano, cost_nano, input_tokens "
                                  "FROM usage_records WHERE request_id = ?", (rid,))
            if rows:
                return tuple(rows[0])
            await asyncio.sleep(0.05)  # the ledger writes in batches, off the request path
    finally:
        await db.close()
    raise AssertionError(f"{rid} never reached the ledger")


def test_key_flag_turns_the_cache_on(gw: tuple[ServerThread, str]) -> None:
    srv, database = gw
    st, _, on = _post(srv.url, "/admin/keys", {"name": "cached", "tenant": "acme",
                                               "response_cache": True}, MASTER)
    assert st == 201 and on["response_cache"] is True
    st, _, off = _post(srv.url, "/admin/keys", {"name": "plain", "tenant": "acme"}, MASTER)
    assert st == 201 and off["response_cache"] is False
    st, _, bad = _post(srv.url, "/admin/keys", {"name": "x", "response_cache": "yes"}, MASTER)
    assert st == 400 and "response_cache" in bad["error"]["message"]

    body = {"model": "deepseek/deepseek-chat",
            "messages": [{"role": "user", "content": "key flag [[sandbox:tokens=12]]"}]}
    path = "/v1/chat/completions"
    assert "x-kanjia-cache" not in _post(srv.url, path, body, off["key"])[1]
    _, h1, d1 = _post(srv.url, path, body, on["key"])
    _, h2, d2 = _post(srv.url, path, body, on["key"])
    assert (h1["x-kanjia-cache"], h2["x-kanjia-cache"]) == ("miss", "hit")
    assert d2["choices"][0]["message"] == d1["choices"][0]["message"]
    # the tenant's other key has the flag off, but a request of it that says "use" reads
    # the tenant's entries; "skip" turns the cache off for a flagged key's request
    _, h3, _ = _post(srv.url, path, body, off["key"], {"x-kanjia-cache": "use"})
    assert h3["x-kanjia-cache"] == "hit"
    _, h4, _ = _post(srv.url, path, body, on["key"], {"x-kanjia-cache": "skip"})
    assert "x-kanjia-cache" not in h4

    # a key of the same tenant that may not use the model gets no cached answer either
    st, _, qwen = _post(srv.url, "/admin/keys", {"name": "qwen-only", "tenant": "acme",
                                                 "models": ["qwen/*"],
                                                 "response_cache": True}, MASTER)
    st, _, err = _post(srv.url, path, body, qwen["key"])
    assert st == 403 and "may not use" in err["error"]["message"]

    miss = asyncio.run(_row(database, h1["x-kanjia-request-id"]))
    hit = asyncio.run(_row(database, h2["x-kanjia-request-id"]))
    assert miss[0] == 0 and miss[2] > 0
    assert hit == (1, miss[2], 0, 0)     # saved what the miss cost; cost 0, no tokens
