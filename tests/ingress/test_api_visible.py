"""Which client API a request came in on is kept with it: the ledger's ``endpoint``
(chat, messages, responses), ``/metrics``' ``endpoint`` label, and the dashboard (requests
per API, and the API of each recent failure), from real traffic through the gateway."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from pathlib import Path

import anthropic
import openai
import pytest

from kanjia.catalog import load_catalog
from kanjia.dashboard import Period, collect_dashboard
from kanjia.ledger._rows import COLUMNS, KEY, TABLE, row_of
from kanjia.ledger.record import CallRecord
from kanjia.ledger.store import migrate, open_database
from kanjia.server import ServerThread

from .conftest import Ledger

MODEL = "deepseek/deepseek-chat"


def _traffic(gw: ServerThread, ledger: Ledger) -> dict[str, list[CallRecord]]:
    """Two chat calls, two Messages calls (one failing upstream), one Responses call;
    their ledger records by API."""
    out: dict[str, list[CallRecord]] = {"chat": [], "messages": [], "responses": []}
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="t", max_retries=0) as oai, \
            anthropic.Anthropic(base_url=gw.url, api_key="t", max_retries=0) as claude:
        for _ in range(2):
            raw = oai.chat.completions.with_raw_response.create(
                model=MODEL, messages=[{"role": "user", "content": "hi [[sandbox:tokens=3]]"}])
            out["chat"].append(ledger.wait(raw.headers["x-kanjia-request-id"]))
        msg = claude.messages.with_raw_response.create(
            model=MODEL, max_tokens=20,
            messages=[{"role": "user", "content": "hi [[sandbox:tokens=4]]"}])
        out["messages"].append(ledger.wait(msg.headers["x-kanjia-request-id"]))
        with pytest.raises(anthropic.APIStatusError) as info:
            claude.messages.create(model=MODEL, max_tokens=20, messages=[
                {"role": "user", "content": "hi [[sandbox:fault=overloaded]]"}])
        failed = info.value.response.headers["x-kanjia-request-id"]
        out["messages"].append(ledger.wait(failed))
        resp = oai.responses.with_raw_response.create(
            model=MODEL, input="hi [[sandbox:tokens=5]]")
        out["responses"].append(ledger.wait(resp.headers["x-kanjia-request-id"]))
    return out


def _requests_by_api(gw: ServerThread) -> dict[str, float]:
    with urllib.request.urlopen(gw.url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    counts: dict[str, float] = {}
    for m in re.finditer(r'^kanjia_requests_total\{([^}]*)\} (\S+)$', text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        counts[labels["endpoint"]] = counts.get(labels["endpoint"], 0) + float(m.group(2))
    return counts


def test_the_api_is_in_the_ledger_metrics_and_dashboard(gw: ServerThread, ledger: Ledger,
                                                         tmp_path: Path) -> None:
    before = _requests_by_api(gw)
    recs = _traffic(gw, ledger)
    for api, rows in recs.items():
        assert {r.endpoint for r in rows} == {api}
    assert recs["messages"][1].status >= 400
    after = _requests_by_api(gw)
    for api, rows in recs.items():
        assert after[api] - before.get(api, 0) == len(rows), api

    async def dashboard() -> dict[str, object]:
        db = open_database(str(tmp_path / "ledger.db"))
        await db.connect()
        try:
            await migrate(db)
            await db.insert_ignore(TABLE, COLUMNS, KEY,
                                   [row_of(r) for rows in recs.values() for r in rows])
            return await collect_dashboard(db, load_catalog(), period=Period.recent())
        finally:
            await db.close()

    data = asyncio.run(dashboard())
    apis = {a["api"]: a for a in data["apis"]}  # type: ignore[attr-defined]
    assert set(apis) == {"chat", "messages", "responses"}
    assert (apis["chat"]["requests"], apis["messages"]["requests"],
            apis["responses"]["requests"]) == (2, 2, 1)
    assert (apis["chat"]["errors"], apis["messages"]["errors"]) == (0, 1)
    assert apis["responses"]["tokens"] == recs["responses"][0].input_tokens \
        + recs["responses"][0].output_tokens
    recent = data["routes"]["recent"]  # type: ignore[index]
    assert [(r["api"], r["status"]) for r in recent] == [("messages", recs["messages"][1].status)]
