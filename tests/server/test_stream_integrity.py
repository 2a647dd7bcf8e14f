"""Stream integrity against the sandbox with faults, for each vendor kind: a stream that
ends, breaks or stalls before the vendor's end marker reaches the client as a
``stream_truncated`` error event without ``[DONE]``, and the ledger says ``truncated``
(status 502, never a success) with the usage delivered; a whole stream's usage chunk
carries its cost; ``GET /v1/requests/{id}`` returns what the ledger holds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from tests.reliability._util import request, set_fault
from tests.server._ledger_gw import LedgerGateway as Gw
from tests.server._ledger_gw import ledger_gateway

from kanjia.config import load_settings
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app

MASTER = "test-master-key-stream"
#: one model of each vendor kind: OpenAI-compatible, Anthropic, Gemini
KINDS = ["deepseek/deepseek-chat", "anthropic/claude-3-5-haiku-20241022",
         "gemini/gemini-2.0-flash"]




@pytest.fixture(scope="module")
def gw(sandbox: SandboxThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gw]:
    with ledger_gateway(sandbox.url, tmp_path_factory.mktemp("integrity"), MASTER, 0.5) as gw:
        yield gw


def _auth(key: str = MASTER) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _stream(url: str, model: str, text: str, include_usage: bool = True
            ) -> tuple[dict[str, str], list[Any]]:
    body: dict[str, Any] = {"model": model, "stream": True, "max_tokens": 200,
                            "messages": [{"role": "user", "content": text}]}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    r = request(url, "POST", "/v1/chat/completions", body, _auth())
    assert r.status == 200, r.body
    events: list[Any] = []
    for block in r.body.decode().split("\n\n"):
        if block.startswith("data: "):
            data = block[6:]
            events.append(data if data == "[DONE]" else json.loads(data))
    return r.headers, events


def _text(events: list[Any]) -> str:
    return "".join(c["delta"].get("content") or "" for e in events if isinstance(e, dict)
                   for c in e.get("choices") or ())


def lookup(url: str, rid: str, key: str = MASTER) -> tuple[int, Any]:
    r = request(url, "GET", f"/v1/requests/{rid}", None, _auth(key))
    return r.status, r.json()


@pytest.mark.parametrize("model", KINDS)
@pytest.mark.parametrize("fault", ["reset", "truncate"])
def test_cut_stream_is_an_error_without_done(gw: Gw, model: str, fault: str) -> None:
    headers, events = _stream(gw.url, model,
                              f"tell me [[sandbox:fault={fault}]] [[sandbox:tokens=60]]")
    assert "[DONE]" not in events, events[-3:]
    last = events[-1]
    assert set(last) == {"error"}, last
    assert last["error"]["type"] == "upstream_error"
    assert last["error"]["code"] == "stream_truncated"
    assert "incomplete" in last["error"]["message"]
    delivered = _text(events)
    status, rec = lookup(gw.url, headers["x-kanjia-request-id"])
    assert status == 200, rec
    assert rec["status"] == "truncated" and rec["http_status"] == 502
    assert rec["error_class"] == "stream_truncated" and rec["stream"] is True
    assert rec["vendor"] == model.split("/")[0]
    assert rec["usage"]["input_tokens"] > 0
    if delivered:  # what was delivered is billed, marked as an estimate
        assert 0 < rec["usage"]["output_tokens"] < 60
        assert rec["usage_estimated"] is True
    assert rec["cost"] > 0 and rec["currency"]


@pytest.mark.parametrize("model", KINDS)
def test_stall_mid_stream_is_truncated(gw: Gw, model: str) -> None:
    """A vendor that stops sending (read deadline 0.5 s) after the first byte."""
    headers, events = _stream(gw.url, model,
                              "slow [[sandbox:chunk_ms=900]] [[sandbox:tokens=20]]")
    assert "[DONE]" not in events
    assert events[-1]["error"]["code"] == "stream_truncated"
    assert "stalled" in events[-1]["error"]["message"]
    status, rec = lookup(gw.url, headers["x-kanjia-request-id"])
    assert (status, rec["status"]) == (200, "truncated")
    assert len(rec["attempts"]) == 1  # never retried silently after the first byte


@pytest.mark.parametrize("model", KINDS)
def test_whole_stream_carries_cost_and_done(gw: Gw, model: str) -> None:
    headers, events = _stream(gw.url, model, "hello [[sandbox:tokens=30]]")
    assert events[-1] == "[DONE]"
    assert all("error" not in e for e in events if isinstance(e, dict))
    for name in ("x-kanjia-request-id", "x-kanjia-vendor", "x-kanjia-model",
                 "x-kanjia-price-period"):
        assert headers[name], name
    assert headers["x-kanjia-request-id"].startswith("req-")
    usage = [e["usage"] for e in events if isinstance(e, dict) and e.get("usage")]
    assert len(usage) == 1
    u = usage[0]
    assert isinstance(u["cost"], float) and u["cost"] > 0 and u["cost_currency"]
    status, rec = lookup(gw.url, headers["x-kanjia-request-id"])
    assert status == 200 and rec["status"] == "ok" and rec["http_status"] == 200
    assert rec["usage_estimated"] is False
    assert rec["usage"]["output_tokens"] == u["completion_tokens"] == 30
    assert Decimal(str(rec["cost"])) == Decimal(str(u["cost"]))
    assert rec["currency"] == u["cost_currency"]
    assert rec["price_period"] == headers["x-kanjia-price-period"]


def test_no_usage_chunk_without_include_usage(gw: Gw) -> None:
    _, events = _stream(gw.url, KINDS[0], "hello [[sandbox:tokens=5]]", include_usage=False)
    assert events[-1] == "[DONE]"
    assert not [e for e in events if isinstance(e, dict) and e.get("usage")]


def test_failover_before_first_byte_still_works(sandbox: SandboxThread) -> None:
    """A reset before any byte reached the client is failed over as before."""
    settings = load_settings(None, sandbox_url=sandbox.url, routes={"fb": {
        "models": ["deepseek/deepseek-chat", "qwen/qwen-plus"], "objective": "ordered"}},
        server={"first_byte_timeout_s": 0.5})
    with ServerThread(build_app(settings, env={})) as srv:
        set_fault(sandbox.url, vendor="deepseek", fault="timeout", count=1)
        body = {"model": "fb", "stream": True,
                "messages": [{"role": "user", "content": "x [[sandbox:tokens=5]]"}]}
        r = request(srv.url, "POST", "/v1/chat/completions", body, timeout=30)
        assert r.status == 200
        assert r.headers["x-kanjia-vendor"] == "qwen"
        assert r.headers["x-kanjia-attempts"].startswith("deepseek/")
        assert r.body.rstrip().endswith(b"data: [DONE]")


def test_openai_sdk_raises_on_a_cut_stream(gw: Gw) -> None:
    """The official SDK turns the error event into an exception: the caller cannot take
    a cut answer for a whole one."""
    import openai

    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER, max_retries=0)
    stream = client.chat.completions.create(
        model=KINDS[0], max_tokens=100, stream=True,
        messages=[{"role": "user", "content": "x [[sandbox:fault=truncate]] "
                                              "[[sandbox:tokens=40]]"}])
    got: list[Any] = []
    with pytest.raises(openai.APIError) as caught:
        got.extend(stream)
    assert got  # part of the answer arrived first
    assert "incomplete" in caught.value.message
    assert (caught.value.body or {}).get("code") == "stream_truncated"


def test_client_gone_mid_stream_bills_what_was_delivered(gw: Gw) -> None:
    """Anthropic reports usage at message_start (output ~1 token); a client that leaves
    mid-stream is billed for what was generated so far, marked estimated, not for 1."""
    import http.client
    from urllib.parse import urlparse

    u = urlparse(gw.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    body = json.dumps({"model": KINDS[1], "stream": True, "max_tokens": 2000, "messages": [
        {"role": "user", "content": "long [[sandbox:chunk_ms=5]] [[sandbox:tokens=1500]]"}]})
    conn.request("POST", "/v1/chat/completions", body=body,
                 headers={"Content-Type": "application/json", **_auth()})
    resp = conn.getresponse()
    rid = resp.getheader("x-kanjia-request-id")
    got = b""
    while got.count(b"data: ") < 60:
        got += resp.read1(4096)
    conn.sock.shutdown(2)  # type: ignore[union-attr]
    conn.close()
    status, rec = lookup(gw.url, str(rid))
    assert status == 200, rec
    assert rec["client_disconnected"] is True
    assert 20 < rec["usage"]["output_tokens"] < 1500
    assert rec["usage_estimated"] is True


def test_a_cut_stream_is_never_a_success_in_reports(
        sandbox: SandboxThread, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The spend report (``/admin/usage``, ``kanjia usage``) counts it as an error, with
    its cost: what the vendor delivered is paid for."""
    root = tmp_path_factory.mktemp("report")
    settings = load_settings(None, sandbox_url=sandbox.url, database=str(root / "l.db"))
    app = build_app(settings, env={"KANJIA_MASTER_KEY": MASTER,
                                   "KANJIA_JOURNAL_DIR": str(root / "j")})
    with ServerThread(app) as srv:
        _, cut = _stream(srv.url, KINDS[0], "x [[sandbox:fault=truncate]] [[sandbox:tokens=40]]")
        _, whole = _stream(srv.url, KINDS[0], "x [[sandbox:tokens=40]]")
        assert "[DONE]" not in cut and whole[-1] == "[DONE]"
    # stopped at once: records still being settled (a usage estimate waiting for its
    # tokenizer) are drained into the ledger before it closes

    from kanjia.ledger.store import open_database
    from kanjia.metering import usage_report

    async def read() -> dict[str, Any]:
        db = open_database(str(root / "l.db"))
        await db.connect()
        try:
            return await usage_report(db, app.services.catalog.fx)
        finally:
            await db.close()

    total = asyncio.run(read())["total"]
    assert (total["requests"], total["errors"]) == (2, 1)
    assert total["estimated_usage"] == 1 and total["amount"] > 0
