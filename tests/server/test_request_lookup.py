"""``GET /v1/requests/{id}`` and ``usage.cost``: a real gateway with a ledger in front of
the sandbox, called with raw HTTP and with the official ``openai`` SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import openai
import pytest
from tests.reliability._util import request
from tests.server._ledger_gw import LedgerGateway as Gw
from tests.server._ledger_gw import ledger_gateway

from kanjia.config import load_settings
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app

MASTER = "test-master-key-lookup"




@pytest.fixture(scope="module")
def gw(sandbox: SandboxThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gw]:
    with ledger_gateway(sandbox.url, tmp_path_factory.mktemp("lookup"), MASTER, 5.0) as gw:
        yield gw


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _key(gw: Gw, name: str) -> str:
    r = request(gw.url, "POST", "/admin/keys", {"name": name}, _auth(MASTER))
    assert r.status == 201, r.body
    return str(r.json()["key"])


def _chat(url: str, key: str, text: str = "hi [[sandbox:tokens=12]]",
          model: str = "deepseek/deepseek-chat") -> Any:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    r = request(url, "POST", "/v1/chat/completions", body, _auth(key))
    assert r.status == 200, r.body
    return r


def lookup(url: str, rid: str, key: str) -> Any:
    return request(url, "GET", f"/v1/requests/{rid}", None, _auth(key))


def test_only_the_key_that_made_it_or_the_admin(gw: Gw) -> None:
    alice, bob = _key(gw, "alice"), _key(gw, "bob")
    r = _chat(gw.url, alice)
    rid = r.headers["x-kanjia-request-id"]
    assert rid.startswith("req-")
    mine = lookup(gw.url, rid, alice)
    assert mine.status == 200, mine.body
    rec = mine.json()
    assert rec["id"] == rid and rec["object"] == "kanjia.request"
    assert rec["status"] == "ok" and rec["http_status"] == 200
    assert rec["requested_model"] == "deepseek/deepseek-chat"
    assert (rec["vendor"], rec["model"]) == ("deepseek", "deepseek-chat")
    assert rec["usage"]["output_tokens"] == 12 and rec["usage_estimated"] is False
    assert set(rec["usage"]) == {"input_tokens", "cached_tokens", "cache_write_tokens",
                                 "output_tokens", "reasoning_tokens"}
    assert rec["price_period"] == r.headers["x-kanjia-price-period"]
    assert rec["latency_ms"] > 0 and rec["attempts"] == ["deepseek/deepseek-chat@sandbox"]
    # the reply, the header and the record agree on the cost
    usage = r.json()["usage"]
    amount, currency = r.headers["x-kanjia-cost"].split()
    assert Decimal(str(usage["cost"])) == Decimal(amount) == Decimal(str(rec["cost"]))
    assert usage["cost_currency"] == currency == rec["currency"]
    assert rec["cost_reporting"] > 0 and rec["reporting_currency"]

    assert lookup(gw.url, rid, MASTER).json() == rec
    other = lookup(gw.url, rid, bob)
    unknown = lookup(gw.url, "req-00000000000000000000000", bob)
    assert other.status == unknown.status == 404
    assert other.json()["error"]["code"] == "request_not_found"
    # the same answer as for an id that does not exist, and the id is not masked
    assert other.json()["error"]["message"].replace(rid, "X") == \
        unknown.json()["error"]["message"].replace("req-00000000000000000000000", "X")
    assert rid in other.json()["error"]["message"]
    assert lookup(gw.url, rid, "kj-not-a-key").status == 401


def test_queued_and_written_records_read_the_same(gw: Gw) -> None:
    r = _chat(gw.url, MASTER)
    rid = r.headers["x-kanjia-request-id"]
    assert gw.ledger.pending > 0  # not in the database yet
    queued = lookup(gw.url, rid, MASTER).json()
    gw.flush()
    assert gw.ledger.pending == 0
    assert lookup(gw.url, rid, MASTER).json() == queued


def test_lookup_right_after_a_stream(gw: Gw) -> None:
    """A stream's record is made after its last byte: asked for at once, it is there."""
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER, max_retries=0)
    for _ in range(5):
        stream = client.chat.completions.with_raw_response.create(
            model="anthropic/claude-3-5-haiku-20241022", max_tokens=50, stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "go [[sandbox:tokens=25]]"}])
        rid = stream.headers["x-kanjia-request-id"]
        chunks = list(stream.parse())
        usage = chunks[-1].usage
        assert usage is not None and usage.completion_tokens == 25
        got = lookup(gw.url, rid, MASTER)
        assert got.status == 200, got.body
        assert got.json()["usage"]["output_tokens"] == 25
        assert got.json()["cost"] == pytest.approx((usage.model_extra or {})["cost"])


def test_openai_sdk_reads_usage_with_cost(gw: Gw) -> None:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER, max_retries=0)
    done = client.chat.completions.create(
        model="gemini/gemini-2.0-flash", max_tokens=40,
        messages=[{"role": "user", "content": "hi [[sandbox:tokens=9]]"}])
    assert done.usage is not None and done.usage.completion_tokens == 9
    extra = done.usage.model_extra or {}
    assert extra["cost"] > 0 and extra["cost_currency"] == "USD"

    chunks = list(client.chat.completions.create(
        model="deepseek/deepseek-chat", max_tokens=40, stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hi [[sandbox:tokens=7]]"}]))
    last = chunks[-1]
    assert last.usage is not None and last.usage.completion_tokens == 7
    assert (last.usage.model_extra or {})["cost"] > 0
    assert (last.usage.model_extra or {})["cost_currency"] == "CNY"

    emb = client.embeddings.create(model="qwen/text-embedding-v3", input=["a", "b c"])
    assert emb.usage.prompt_tokens > 0
    assert (emb.usage.model_extra or {})["cost"] > 0


def test_lookup_cost(gw: Gw) -> None:
    """How long a lookup takes, queued and from the database (printed: -s to see)."""
    rids = [_chat(gw.url, MASTER).headers["x-kanjia-request-id"] for _ in range(20)]

    def timed() -> float:
        t0 = time.perf_counter()
        for rid in rids:
            assert lookup(gw.url, rid, MASTER).status == 200
        return (time.perf_counter() - t0) / len(rids) * 1000

    queued = timed()
    gw.flush()
    written = timed()
    print(f"lookup: {queued:.2f} ms queued, {written:.2f} ms from SQLite (HTTP round trip)")


def test_no_ledger_is_a_clear_404(sandbox: SandboxThread) -> None:
    settings = load_settings(None, sandbox_url=sandbox.url)
    with ServerThread(build_app(settings, env={})) as srv:
        r = request(srv.url, "GET", "/v1/requests/req-0123", None)
        assert r.status == 404
        assert "no ledger" in r.json()["error"]["message"]


def test_lookup_on_another_instance(sandbox: SandboxThread,
                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    """Two gateways on one ledger (workers or instances behind a balancer): a request
    answered by one is found at once by the other, though its row is not written yet."""
    root = tmp_path_factory.mktemp("two")
    database = str(root / "ledger.db")
    servers = []
    for name in ("a", "b"):
        app = build_app(load_settings(None, sandbox_url=sandbox.url, database=database),
                        env={"KANJIA_MASTER_KEY": MASTER,
                             "KANJIA_JOURNAL_DIR": str(root / name),
                             "KANJIA_LEDGER_FLUSH_S": "0.2"})
        servers.append(ServerThread(app))
    with servers[0] as a, servers[1] as b:
        for _ in range(5):
            rid = _chat(a.url, MASTER).headers["x-kanjia-request-id"]
            got = lookup(b.url, rid, MASTER)
            assert got.status == 200, got.body
            print(f"lookup on the other instance: {got.seconds * 1000:.0f} ms")
            assert got.json()["id"] == rid
        t0 = time.perf_counter()
        missing = lookup(b.url, "req-" + rid[4:17] + "00000000000", MASTER)
        assert missing.status == 404
        assert time.perf_counter() - t0 < 5.0  # a recent id that never comes: bounded


def test_cascade_lookup_lists_every_call(sandbox: SandboxThread,
                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    """A cascade request is billed as several calls (``<id>``, ``<id>.2``): its lookup
    lists them, and their total is the reply's ``usage.cost`` and ``x-kanjia-cost``."""
    from tests.server.test_cascade import STRONG, WEAK, _Quality

    root = tmp_path_factory.mktemp("cascade")
    route = {"models": [WEAK, STRONG], "objective": "cascade",
             "quality_models": {WEAK: "weak", STRONG: "strong"}}
    settings = load_settings(None, sandbox_url=sandbox.url, routes={"smart": route},
                             database=str(root / "ledger.db"))
    app = build_app(settings, env={"KANJIA_MASTER_KEY": MASTER,
                                   "KANJIA_JOURNAL_DIR": str(root / "j")})
    app.services.planner.quality = _Quality()  # type: ignore[assignment]
    with ServerThread(app) as srv:
        r = _chat(srv.url, MASTER, "a hard one", model="smart")
        rid = r.headers["x-kanjia-request-id"]
        got = lookup(srv.url, rid, MASTER).json()
        assert [c["id"] for c in got["calls"]] == [rid, f"{rid}.2"]
        assert [c["model"] for c in got["calls"]] == ["qwen-turbo", "gpt-4o"]
        amount, currency = r.headers["x-kanjia-cost"].split()
        assert (Decimal(str(got["total_cost"])), got["total_currency"]) == \
            (Decimal(amount), currency)
        usage = r.json()["usage"]
        assert Decimal(str(usage["cost"])) == Decimal(amount)
        assert lookup(srv.url, f"{rid}.2", MASTER).json()["model"] == "gpt-4o"
