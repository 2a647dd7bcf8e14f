"""The response cache through the gateway, against the sandbox: headers, stream replay,
every ingress API, tenant scoping, the ledger record of a hit, budgets, failures."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import openai
import pytest

from kanjia.access import Principal, Reservation, WorstCase
from kanjia.cache import ResponseCache
from kanjia.config import load_settings
from kanjia.ledger.record import CallRecord
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app

MODEL = "deepseek/deepseek-chat"


class Ledger:
    def __init__(self) -> None:
        self.records: list[CallRecord] = []
        self._cond = threading.Condition()

    def append(self, rec: CallRecord) -> None:
        with self._cond:
            self.records.append(rec)
            self._cond.notify_all()

    def wait(self, rid: str, timeout: float = 10.0) -> CallRecord:
        def found() -> CallRecord | None:
            return next((r for r in self.records
                         if rid in (r.request_id, r.request_id.split("-", 1)[-1])), None)
        with self._cond:
            self._cond.wait_for(lambda: found() is not None, timeout)
        rec = found()
        assert rec is not None, f"no record for {rid}"
        return rec

    def nth(self, n: int, timeout: float = 10.0) -> CallRecord:
        """The ``n``-th record (0-based), once it exists."""
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.records) > n, timeout)
            return self.records[n]


class TenantAccess:
    """The API key names the tenant; every request is metered (reservations counted)."""

    def __init__(self) -> None:
        self.reserved: list[tuple[str, Decimal, int]] = []

    async def authenticate(self, api_key: str | None, model: str) -> Principal:
        return Principal(key_id=api_key, tenant=api_key, metered=True)

    def may_use(self, principal: Principal, model_key: str) -> bool:
        return True

    async def reserve(self, principal: Principal, model_key: str, max_cost: Decimal | None,
                      currency: str, tokens: int, *,
                      others: Sequence[WorstCase] = ()) -> Reservation | None:
        self.reserved.append((model_key, max_cost or Decimal(0), tokens))
        return None

    def release(self, reservation: Reservation | None) -> None:
        return None

    def settle(self, reservation: Reservation | None, record: CallRecord) -> None:
        return None


class Gw:
    def __init__(self, srv: ServerThread, ledger: Ledger, access: TenantAccess,
                 cache: ResponseCache) -> None:
        self.srv, self.ledger, self.access, self.cache = srv, ledger, access, cache

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None,
             key: str = "acme") -> tuple[int, dict[str, str], bytes]:
        u = urlparse(self.srv.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
        conn.request("POST", path, json.dumps(body),
                     {"content-type": "application/json", "authorization": f"Bearer {key}",
                      **(headers or {})})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def chat(self, body: dict[str, Any], headers: dict[str, str] | None = None,
             key: str = "acme") -> tuple[int, dict[str, str], bytes]:
        return self.post("/v1/chat/completions", {"model": MODEL, **body}, headers, key)


@pytest.fixture(scope="module")
def gw(sandbox: SandboxThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gw]:
    path = tmp_path_factory.mktemp("rc") / "cache.db"
    settings = load_settings(None, sandbox_url=sandbox.url,
                             response_cache={"path": str(path)},
                             routes={"cached-route": {"models": [MODEL],
                                                      "response_cache": True,
                                                      "response_cache_ttl_s": 120}},
                             server={"upstream_timeout_s": 5.0, "first_byte_timeout_s": 5.0})
    ledger, access = Ledger(), TenantAccess()
    app = build_app(settings, env={}, sinks=[ledger.append], access=access)
    assert app.services.gateway.cache is not None
    with ServerThread(app) as srv:
        yield Gw(srv, ledger, access, app.services.gateway.cache.cache)


def _msgs(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _content(data: bytes) -> str:
    return str(json.loads(data)["choices"][0]["message"]["content"])


def _stream_text(data: bytes) -> tuple[str, list[dict[str, Any]]]:
    chunks = [json.loads(line[6:]) for line in data.decode().split("\n")
              if line.startswith("data: ") and line != "data: [DONE]"]
    text = "".join(c["choices"][0]["delta"].get("content") or ""
                   for c in chunks if c.get("choices"))
    return text, chunks


def test_off_by_default(gw: Gw) -> None:
    st, h, _ = gw.chat({"messages": _msgs("off by default")})
    assert st == 200 and "x-kanjia-cache" not in h


def test_use_miss_then_hit_recorded_at_cost_zero(gw: Gw) -> None:
    body = {"messages": _msgs("cache me please"), "temperature": 0}
    st, h1, d1 = gw.chat(body, {"x-kanjia-cache": "use"})
    assert st == 200 and h1["x-kanjia-cache"] == "miss"
    miss = gw.ledger.wait(h1["x-kanjia-request-id"])
    reserved = len(gw.access.reserved)
    st, h2, d2 = gw.chat({**body, "user": "someone"}, {"x-kanjia-cache": "use"})
    assert st == 200 and h2["x-kanjia-cache"] == "hit"
    assert _content(d2) == _content(d1)
    assert h2["x-kanjia-cost"].startswith("0 ")
    assert h2["x-kanjia-vendor"] == "deepseek" and h2["x-kanjia-model"] == "deepseek-chat"
    # the same tokens; the hit itself cost nothing (usage.cost says so)
    u1, u2 = json.loads(d1)["usage"], json.loads(d2)["usage"]
    assert u1.pop("cost") > 0 and u2.pop("cost") == 0
    assert u2 == u1
    hit = gw.ledger.wait(h2["x-kanjia-request-id"])
    assert hit.cache_hit and not miss.cache_hit
    assert hit.cost == 0 and hit.cost_reporting == 0
    assert hit.saved == miss.cost and hit.saved > 0 and hit.currency == miss.currency
    assert hit.input_tokens == hit.output_tokens == 0   # no vendor billed any token
    assert hit.vendor == "deepseek" and hit.deployment is None
    # a hit reserves nothing (0, no tokens): only the key's allowlist and rate limits
    assert gw.access.reserved[reserved:] == [(MODEL, Decimal(0), 0)]
    assert gw.access.reserved[reserved - 1][1] > 0          # the miss reserved its cost


def test_skip_and_refresh(gw: Gw) -> None:
    body = {"messages": _msgs("skip and refresh")}
    _, h, _ = gw.chat(body, {"x-kanjia-cache": "use"})
    assert h["x-kanjia-cache"] == "miss"
    _, h, _ = gw.chat(body, {"x-kanjia-cache": "skip"})
    assert "x-kanjia-cache" not in h and float(h["x-kanjia-cost"].split()[0]) > 0
    stored = gw.cache.stored
    _, h, _ = gw.chat(body, {"x-kanjia-cache": "refresh"})
    assert h["x-kanjia-cache"] == "refresh" and float(h["x-kanjia-cost"].split()[0]) > 0
    assert gw.cache.stored == stored + 1                # answered anew and stored again
    _, h, _ = gw.chat(body, {"x-kanjia-cache": "use"})
    assert h["x-kanjia-cache"] == "hit"


def test_ttl_header_stores_for_that_long(gw: Gw) -> None:
    body = {"messages": _msgs("ttl header")}
    _, h, _ = gw.chat(body, {"x-kanjia-cache": "use", "x-kanjia-cache-ttl": "7"})
    assert h["x-kanjia-cache"] == "miss"
    from kanjia.cache import LocalStore

    store = gw.cache.store
    assert isinstance(store, LocalStore)
    with store._lock:
        (expires, used), = store._conn().execute(
            "SELECT expires, used FROM entries ORDER BY used DESC LIMIT 1").fetchall()
    assert expires - used == pytest.approx(7, abs=0.01)


def test_bad_cache_headers_are_400s(gw: Gw) -> None:
    st, _, d = gw.chat({"messages": _msgs("x")}, {"x-kanjia-cache": "always"})
    assert st == 400 and "x-kanjia-cache" in d.decode()
    st, _, d = gw.chat({"messages": _msgs("x")}, {"x-kanjia-cache-ttl": "-5"})
    assert st == 400 and "x-kanjia-cache-ttl" in d.decode()


def test_route_turns_it_on(gw: Gw) -> None:
    body = {"model": "cached-route", "messages": _msgs("a cached route")}
    _, h1, _ = gw.post("/v1/chat/completions", body)
    _, h2, _ = gw.post("/v1/chat/completions", body)
    assert (h1["x-kanjia-cache"], h2["x-kanjia-cache"]) == ("miss", "hit")
    assert h2["x-kanjia-route"] == "cached-route"
    _, h3, _ = gw.post("/v1/chat/completions", body, {"x-kanjia-cache": "skip"})
    assert "x-kanjia-cache" not in h3


def test_tenants_do_not_share_answers(gw: Gw) -> None:
    body = {"messages": _msgs("tenant scoped")}
    use = {"x-kanjia-cache": "use"}
    assert gw.chat(body, use, key="acme")[1]["x-kanjia-cache"] == "miss"
    assert gw.chat(body, use, key="globex")[1]["x-kanjia-cache"] == "miss"
    assert gw.chat(body, use, key="globex")[1]["x-kanjia-cache"] == "hit"
    assert gw.chat(body, use, key="acme")[1]["x-kanjia-cache"] == "hit"


def test_stream_replay_with_and_without_usage(gw: Gw) -> None:
    use = {"x-kanjia-cache": "use"}
    body = {"messages": _msgs("stream and replay"), "stream": True,
            "stream_options": {"include_usage": True}}
    before = gw.cache.stored
    st, h1, d1 = gw.chat(body, use)
    assert st == 200 and h1["x-kanjia-cache"] == "miss"
    assert gw.cache.wait_stored(before + 1)
    st, h2, d2 = gw.chat(body, use)
    assert h2["x-kanjia-cache"] == "hit" and h2["content-type"].startswith("text/event-stream")
    assert d2.rstrip().endswith(b"data: [DONE]")
    text1, chunks1 = _stream_text(d1)
    text2, chunks2 = _stream_text(d2)
    assert text2 == text1 and text1
    u1, u2 = dict(chunks1[-1]["usage"]), dict(chunks2[-1]["usage"])
    assert u1.pop("cost") > 0 and u2.pop("cost") == 0
    assert u2 == u1
    assert [c["choices"][0]["finish_reason"] for c in chunks2 if c["choices"]][-1] == "stop"
    rec = gw.ledger.wait(h2["x-kanjia-request-id"])
    assert rec.cache_hit and rec.stream and rec.saved > 0
    # without include_usage: no usage chunk; as JSON: the same answer
    _, h3, d3 = gw.chat({**body, "stream_options": None}, use)
    assert h3["x-kanjia-cache"] == "hit"
    assert _stream_text(d3)[0] == text1 and b'"usage"' not in d3
    _, h4, d4 = gw.chat({**body, "stream": False}, use)
    assert h4["x-kanjia-cache"] == "hit" and _content(d4) == text1


def test_json_answer_replayed_as_stream_to_the_sdk(gw: Gw) -> None:
    msgs = _msgs("sdk replay")
    with openai.OpenAI(base_url=gw.srv.url + "/v1", api_key="acme", max_retries=0,
                       default_headers={"x-kanjia-cache": "use"}) as sdk:
        first = sdk.chat.completions.create(model=MODEL, messages=msgs)  # type: ignore[arg-type]
        stream = sdk.chat.completions.create(model=MODEL, messages=msgs,  # type: ignore[arg-type]
                                             stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == first.choices[0].message.content


def test_incomplete_and_failed_answers_are_not_cached(gw: Gw) -> None:
    use = {"x-kanjia-cache": "use"}
    cut = {"messages": _msgs("cut short please"), "max_tokens": 2}
    d = gw.chat(cut, use)[2]
    assert json.loads(d)["choices"][0]["finish_reason"] == "length"
    assert gw.chat(cut, use)[1]["x-kanjia-cache"] == "miss"          # not stored
    bad = {"messages": _msgs("[[sandbox:fault=content_filter]] no")}
    assert gw.chat(bad, use)[0] >= 400
    assert gw.chat(bad, use)[0] >= 400                                # never a cached error
    broken = {"messages": _msgs("[[sandbox:fault=reset]] broken"), "stream": True}
    before, seen = gw.cache.stored, len(gw.ledger.records)
    gw.chat(broken, use)
    rec = gw.ledger.nth(seen)
    assert rec.status != 200 or rec.error_class is not None
    assert gw.chat(broken, use)[1].get("x-kanjia-cache") != "hit"
    assert gw.cache.stored == before


def test_messages_and_responses_apis_replay(gw: Gw) -> None:
    use = {"x-kanjia-cache": "use"}
    msg = {"model": MODEL, "max_tokens": 1000,
           "messages": _msgs("anthropic shaped [[sandbox:tokens=30]]"),
           "stream": True}
    before = gw.cache.stored
    _, h1, d1 = gw.post("/v1/messages", msg, use)
    assert h1["x-kanjia-cache"] == "miss"
    assert gw.cache.wait_stored(before + 1)
    _, h2, d2 = gw.post("/v1/messages", msg, use)
    assert h2["x-kanjia-cache"] == "hit"

    def deltas(data: bytes) -> str:
        out = []
        for line in data.decode().split("\n"):
            if line.startswith("data: "):
                ev = json.loads(line[6:])
                if ev.get("type") == "content_block_delta":
                    out.append(ev["delta"].get("text", ""))
        return "".join(out)
    assert deltas(d2) == deltas(d1) and deltas(d1)
    assert b"message_stop" in d2
    _, h3, d3 = gw.post("/v1/messages", {**msg, "stream": False}, use)
    assert h3["x-kanjia-cache"] == "hit"
    assert json.loads(d3)["content"][0]["text"] == deltas(d1)

    resp = {"model": MODEL, "input": "responses shaped [[sandbox:tokens=30]]", "stream": True,
            "store": False}
    before = gw.cache.stored
    _, r1, e1 = gw.post("/v1/responses", resp, use)
    assert r1["x-kanjia-cache"] == "miss"
    assert gw.cache.wait_stored(before + 1)
    _, r2, e2 = gw.post("/v1/responses", resp, use)
    assert r2["x-kanjia-cache"] == "hit" and b"response.completed" in e2

    def text(data: bytes) -> str:
        return "".join(json.loads(line[6:]).get("delta", "")
                       for line in data.decode().split("\n")
                       if line.startswith("data: ") and
                       json.loads(line[6:]).get("type") == "response.output_text.delta")
    assert text(e2) == text(e1) and text(e1)


def test_a_failing_backend_answers_without_cache(sandbox: SandboxThread,
                                                 tmp_path: Path) -> None:
    settings = load_settings(None, sandbox_url=sandbox.url, redis="redis://127.0.0.1:1/0",
                             response_cache={"enabled": True})
    app = build_app(settings, env={})
    hook = app.services.gateway.cache
    assert hook is not None
    with ServerThread(app) as srv:
        g = Gw(srv, Ledger(), TenantAccess(), hook.cache)
        for _ in range(2):
            st, h, d = g.chat({"messages": _msgs("redis is down")})
            assert st == 200 and _content(d) and h["x-kanjia-cache"] == "miss"
    assert hook.cache.failures >= 3     # looked up twice, stored (at least) once


def test_redis_backend_through_the_gateway(sandbox: SandboxThread) -> None:
    import asyncio
    import uuid

    import redis.asyncio as aioredis

    from kanjia.cache import RedisStore
    from kanjia.config import ResponseCacheSettings

    async def up() -> bool:
        client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1)
        try:
            return bool(await client.ping())
        except Exception:
            return False
        finally:
            await client.aclose()
    if not asyncio.run(up()):
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix = f"kanjia-test-rc-{uuid.uuid4().hex[:8]}:"
    settings = load_settings(None, sandbox_url=sandbox.url, redis="redis://127.0.0.1:6379/0",
                             response_cache={"enabled": True})
    app = build_app(settings, env={})
    hook = app.services.gateway.cache
    assert hook is not None
    hook.cache = ResponseCache(ResponseCacheSettings(enabled=True),
                               store=RedisStore("redis://127.0.0.1:6379/0", prefix=prefix))
    with ServerThread(app) as srv:
        g = Gw(srv, Ledger(), TenantAccess(), hook.cache)
        body = {"messages": _msgs("redis backed"), "stream": True}
        _, h1, d1 = g.chat(body)
        assert h1["x-kanjia-cache"] == "miss" and g.cache.wait_stored(1)
        _, h2, d2 = g.chat(body)
        assert h2["x-kanjia-cache"] == "hit"
        assert _stream_text(d2)[0] == _stream_text(d1)[0]

    async def keys() -> list[bytes]:
        client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
        try:
            found = [k async for k in client.scan_iter(match=prefix + "*")]
            if found:
                await client.delete(*found)
            return found
        finally:
            await client.aclose()
    assert len(asyncio.run(keys())) == 1   # one entry, under the tenant-scoped key
