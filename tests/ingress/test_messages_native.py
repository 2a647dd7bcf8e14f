"""POST /v1/messages passed through to an Anthropic upstream: what the client wrote is what
Anthropic receives (cache_control, thinking blocks with their signatures, top_k, betas),
and what Anthropic answers is what the client gets (content blocks, signatures, its own
events), billed from Anthropic's own usage fields; a candidate that does not speak the
Messages API still gets a translation."""

from __future__ import annotations

import http.client
import json
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

import anthropic
import pytest
from tests.reliability._util import set_fault

from kanjia.catalog import Usage, cost_of
from kanjia.config import load_settings
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app
from kanjia.server.upstream import Upstream, UpstreamResponse
from kanjia.vendors import UpstreamRequest

from .conftest import Ledger, sse_events

HAIKU = "anthropic/claude-3-5-haiku-20241022"
WIRE_MODEL = "claude-3-5-haiku-20241022"
SIGNED = "EqQBCkgIARABGAIiQNclientsignature"


class _Tee:
    """An upstream response whose bytes are also kept (what the vendor sent)."""

    def __init__(self, resp: UpstreamResponse, sink: bytearray) -> None:
        self._resp, self._sink = resp, sink
        self.status, self.headers = resp.status, resp.headers

    @property
    def is_event_stream(self) -> bool:
        return self._resp.is_event_stream

    async def read(self) -> bytes:
        data = await self._resp.read()
        self._sink += data
        return data

    async def chunks(self) -> AsyncIterator[bytes]:
        async for data in self._resp.chunks():
            self._sink += data
            yield data

    def release(self) -> None:
        self._resp.release()

    def close(self) -> None:
        self._resp.close()


class Wire:
    """Every request the gateway sent upstream, with the bytes that came back."""

    def __init__(self, upstream: Upstream) -> None:
        self.calls: list[tuple[UpstreamRequest, bytearray]] = []
        self._lock = threading.Lock()
        send = upstream.send

        async def spy(req: UpstreamRequest, stream: bool) -> Any:
            sink = bytearray()
            with self._lock:
                self.calls.append((req, sink))
            return _Tee(await send(req, stream), sink)

        upstream.send = spy  # type: ignore[method-assign]

    def last(self, url_part: str = "/v1/messages") -> tuple[UpstreamRequest, bytes]:
        with self._lock:
            req, sink = next(c for c in reversed(self.calls) if url_part in c[0].url)
        return req, bytes(sink)


@pytest.fixture(scope="module")
def native_gw(sandbox: SandboxThread, ledger: Ledger) -> Iterator[tuple[ServerThread, Wire]]:
    settings = load_settings(None, sandbox_url=sandbox.url, routes={
        "claude-first": {"models": [HAIKU, "deepseek/deepseek-chat"], "objective": "ordered"}})
    app = build_app(settings, env={}, sinks=[ledger.append])
    wire = Wire(app.services.gateway.upstream)
    with ServerThread(app) as srv:
        yield srv, wire


def _post(url: str, body: dict[str, Any], path: str = "/v1/messages",
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(),
                     headers={"x-api-key": "t", "content-type": "application/json",
                              **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _history_body(nonce: str, stream: bool = False) -> dict[str, Any]:
    """A request translation would lose: cache_control, a signed thinking block, top_k."""
    return {
        "model": HAIKU, "max_tokens": 3000, "top_k": 40, "temperature": 1,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "system": [{"type": "text", "text": f"Session {nonce}. " + "Be exact. " * 500,
                    "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {"role": "user", "content": "What is 2 + 2?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Two and two make four.",
                 "signature": SIGNED},
                {"type": "text", "text": "4"}]},
            {"role": "user", "content": [{"type": "text",
                                          "text": "And 3 + 3? [[sandbox:tokens=12]]",
                                          "cache_control": {"type": "ephemeral"}}]}],
        **({"stream": True} if stream else {}),
    }


def test_the_upstream_gets_the_clients_exact_body(native_gw: tuple[ServerThread, Wire],
                                                 ledger: Ledger) -> None:
    srv, wire = native_gw
    body = _history_body(secrets.token_hex(6))
    status, headers, data = _post(srv.url, body, "/v1/messages?beta=true", {
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "interleaved-thinking-2025-05-14"})
    assert status == 200, data
    req, upstream = wire.last()
    assert json.loads(req.body) == {**body, "model": WIRE_MODEL}  # nothing lost or added
    assert req.url.endswith("/v1/messages?beta=true")
    assert req.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert req.headers.get("x-api-key") != "t"  # the deployment's key, never the client's
    sent, got = json.loads(upstream), json.loads(data)
    # Anthropic's answer unchanged: its id, blocks and signature, stop reason, usage
    assert got["content"] == sent["content"]
    assert [b["type"] for b in got["content"]] == ["thinking", "text"]
    assert got["content"][0]["signature"] == sent["content"][0]["signature"] != ""
    assert got["id"] == sent["id"] and got["stop_reason"] == sent["stop_reason"]
    assert got["model"] == HAIKU  # the name the client asked for, as when translated
    assert headers["x-kanjia-model"] == WIRE_MODEL
    usage = got.pop("usage")
    assert {k: v for k, v in usage.items() if k not in ("cost", "cost_currency")} \
        == sent["usage"]
    assert sent["usage"]["cache_creation_input_tokens"] > 1000  # the 1h system prompt
    rec = ledger.wait(headers["x-kanjia-request-id"])
    assert rec.endpoint == "messages" and rec.status == 200 and not rec.usage_estimated
    assert rec.cache_write_tokens == sent["usage"]["cache_creation_input_tokens"]
    split = sent["usage"]["cache_creation"]
    assert rec.cache_write_1h_tokens == split["ephemeral_1h_input_tokens"] > 1000
    assert rec.output_tokens == sent["usage"]["output_tokens"]
    assert Decimal(str(usage["cost"])) == round(rec.cost, 9)
    assert usage["cost_currency"] == rec.currency == "USD"
    assert headers["x-kanjia-cost"].startswith(format(rec.cost.normalize(), "f"))


def test_stream_events_pass_through(native_gw: tuple[ServerThread, Wire],
                                    ledger: Ledger) -> None:
    srv, wire = native_gw
    body = _history_body(secrets.token_hex(6), stream=True)
    status, headers, data = _post(srv.url, body)
    assert status == 200
    req, upstream = wire.last()
    assert json.loads(req.body) == {**body, "model": WIRE_MODEL}
    mine, theirs = sse_events(data), sse_events(upstream)
    assert [n for n, _ in mine] == [n for n, _ in theirs]  # Anthropic's own sequence
    assert [n for n, _ in mine][-1] == "message_stop"
    for (name, got), (_, sent) in zip(mine, theirs, strict=True):
        if name == "message_start":
            assert got["message"]["model"] == HAIKU
            got["message"]["model"] = sent["message"]["model"]
        if name == "message_delta":
            assert got["usage"].pop("cost") is not None
            assert got["usage"].pop("cost_currency") == "USD"
        assert got == sent, name
    deltas = [e["delta"]["type"] for n, e in mine if n == "content_block_delta"]
    assert "signature_delta" in deltas and "thinking_delta" in deltas
    rec = ledger.wait(headers["x-kanjia-request-id"])
    assert rec.stream and rec.status == 200 and not rec.usage_estimated
    final = next(e for n, e in mine if n == "message_delta")
    assert rec.output_tokens == final["usage"]["output_tokens"]


def test_sdk_thinking_and_tools_round_trip(native_gw: tuple[ServerThread, Wire]) -> None:
    """The official SDK: a streamed tool call with thinking, and the signed thinking block
    sent back next turn reaches Anthropic as it was (translation would drop it)."""
    srv, wire = native_gw
    tool = {"name": "get_weather", "description": "The weather in a city.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                             "required": ["city"]}}
    client = anthropic.Anthropic(base_url=srv.url, api_key="t", max_retries=0, timeout=20)
    prompt: list[Any] = [{"role": "user", "content": "Weather in Oslo? [[sandbox:tool]]"}]
    with client.messages.stream(model=HAIKU, max_tokens=3000, tools=[tool],  # type: ignore[list-item]
                                thinking={"type": "enabled", "budget_tokens": 1024},
                                messages=prompt) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    thinking = first.content[0]
    assert thinking.type == "thinking" and thinking.signature
    use = first.content[1]
    assert use.type == "tool_use" and use.name == "get_weather"
    history = [
        *prompt,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                          for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                      "content": "sunny"}]}]
    second = client.messages.create(model=HAIKU, max_tokens=3000, tools=[tool],  # type: ignore[list-item]
                                    thinking={"type": "enabled", "budget_tokens": 1024},
                                    messages=history)
    assert second.stop_reason == "end_turn" and second.content
    req, _ = wire.last()
    sent = json.loads(req.body)["messages"][1]["content"][0]
    assert sent == {"type": "thinking", "thinking": thinking.thinking,
                    "signature": thinking.signature}


def test_failover_to_another_vendor_translates(native_gw: tuple[ServerThread, Wire],
                                               sandbox: SandboxThread) -> None:
    """A route whose Anthropic candidate fails goes on to DeepSeek by translation; the
    client still gets an Anthropic-shaped message."""
    srv, wire = native_gw
    set_fault(sandbox.url, vendor="anthropic", fault="server_error", count=1)
    body = {"model": "claude-first", "max_tokens": 50, "top_k": 5,
            "messages": [{"role": "user", "content": "hi [[sandbox:tokens=6]]"}]}
    status, headers, data = _post(srv.url, body)
    assert status == 200, data
    assert headers["x-kanjia-vendor"] == "deepseek"
    assert headers["x-kanjia-attempts"].startswith("anthropic/")
    msg = json.loads(data)
    assert msg["type"] == "message" and msg["model"] == "claude-first"
    assert msg["content"][0]["type"] == "text" and msg["usage"]["output_tokens"] == 6
    req, _ = wire.last("/chat/completions")
    assert "top_k" not in json.loads(req.body)  # the chat form: translated, not passed
    # the same route with a healthy Anthropic passes through
    status, headers, data = _post(srv.url, body)
    assert status == 200 and headers["x-kanjia-vendor"] == "anthropic"
    req, _ = wire.last()
    assert json.loads(req.body)["top_k"] == 5


def test_a_cut_native_stream_ends_with_an_error_event(native_gw: tuple[ServerThread, Wire],
                                                      ledger: Ledger) -> None:
    srv, _ = native_gw
    body = {"model": HAIKU, "max_tokens": 100, "stream": True,
            "messages": [{"role": "user",
                          "content": "x [[sandbox:fault=reset]] [[sandbox:tokens=30]]"}]}
    status, headers, data = _post(srv.url, body)
    names = [n for n, _ in sse_events(data)]
    assert status == 200 and names[0] == "message_start"
    assert names[-1] == "error" and "message_stop" not in names
    rec = ledger.wait(headers["x-kanjia-request-id"])
    assert rec.status != 200  # a broken stream is never a success


def test_claude_code_session_on_anthropic(native_gw: tuple[ServerThread, Wire],
                                          ledger: Ledger) -> None:
    """Claude Code's shape against an Anthropic upstream: a long cache_control system
    prompt, many tools, streamed, betas; turn 2 reads the prefix from Anthropic's cache
    and the ledger prices it at the catalog's cache-read price."""
    srv, wire = native_gw
    nonce = secrets.token_hex(8)
    system = [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI."},
              {"type": "text", "text": f"Session {nonce}. " + "Follow the repository rules. " * 400,
               "cache_control": {"type": "ephemeral"}}]
    tools: list[Any] = [{"name": f"tool_{i}", "description": f"Tool number {i}. " * 5,
                         "input_schema": {"type": "object",
                                          "properties": {"path": {"type": "string"}},
                                          "required": ["path"]}} for i in range(14)]
    client = anthropic.Anthropic(base_url=srv.url, api_key="test", max_retries=0, timeout=20,
                                 default_headers={"anthropic-beta": "claude-code-20250219"})
    messages: list[Any] = [{"role": "user", "content": [
        {"type": "text", "text": "Read the file. [[sandbox:tool]]",
         "cache_control": {"type": "ephemeral"}}]}]
    records = []
    for turn in range(2):
        with client.beta.messages.stream(
                model=HAIKU, max_tokens=2000, system=system,  # type: ignore[arg-type]
                tools=tools, messages=messages,
                metadata={"user_id": f"user_{nonce}"},
                betas=["claude-code-20250219"]) as stream:
            for _ in stream:
                pass
            final = stream.get_final_message()
            rid = stream.response.headers["x-kanjia-request-id"]
        records.append(ledger.wait(rid))
        req, _ = wire.last()
        assert json.loads(req.body)["system"] == system  # cache marks reached Anthropic
        if turn == 0:
            use = next(b for b in final.content if b.type == "tool_use")
            messages += [{"role": "assistant",
                          "content": [b.model_dump(exclude_none=True) for b in final.content]},
                         {"role": "user", "content": [
                             {"type": "tool_result", "tool_use_id": use.id, "content": "ok"},
                             {"type": "text", "text": "thanks [[sandbox:tokens=20]]"}]}]
    first, later = records
    assert first.cached_tokens == 0 and first.cache_write_tokens > 1000
    assert later.cached_tokens > 1000  # the system prompt and tools, read from the cache
    entry = gw_entry(srv)
    at = datetime.fromtimestamp(later.ts, UTC)
    period = entry.price_at(at)
    assert period is not None and period.cached_mtok is not None
    assert period.cached_mtok < period.input_mtok
    usage = Usage(later.input_tokens, later.cached_tokens, later.cache_write_tokens,
                  later.output_tokens, 0, cache_write_1h_tokens=later.cache_write_1h_tokens)
    assert later.cost == cost_of(usage, entry, at).amount
    rates = period.rates
    expected = ((later.input_tokens - later.cached_tokens - later.cache_write_tokens)
                * rates.input + later.cached_tokens * rates.cached
                + later.cache_write_tokens * rates.cache_write
                + later.output_tokens * rates.output)
    assert later.cost == expected  # every cached token at the cache-read price


def gw_entry(srv: ServerThread) -> Any:
    entry = srv.app.services.catalog.get("anthropic", WIRE_MODEL)
    assert entry is not None
    return entry


PDF = {"type": "document", "title": "spec.pdf",
       "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"},
       "cache_control": {"type": "ephemeral"}}


def test_what_only_anthropic_reads_goes_only_to_anthropic(
        native_gw: tuple[ServerThread, Wire], ledger: Ledger) -> None:
    """A PDF document and MCP servers cannot be translated: to Anthropic they pass through
    (and are billed), to any other vendor they are a 400 naming the field, and a route
    keeps only its Anthropic candidate."""
    srv, wire = native_gw
    body = {"model": HAIKU, "max_tokens": 50,
            "mcp_servers": [{"type": "url", "url": "https://mcp.example/sse", "name": "ex"}],
            "messages": [{"role": "user", "content": [
                PDF, {"type": "text", "text": "Summarise. [[sandbox:tokens=7]]"}]}]}
    status, headers, data = _post(srv.url, body)
    assert status == 200, data
    req, _ = wire.last()
    assert json.loads(req.body) == {**body, "model": WIRE_MODEL}
    assert json.loads(data)["usage"]["output_tokens"] == 7
    assert ledger.wait(headers["x-kanjia-request-id"]).status == 200
    status, _, data = _post(srv.url, {**body, "model": "deepseek/deepseek-chat"})
    err = json.loads(data)
    assert status == 400 and err["type"] == "error"
    assert err["error"]["type"] == "invalid_request_error"
    assert "messages.0.content.0.source" in err["error"]["message"]
    status, headers, data = _post(srv.url, {**body, "model": "claude-first"})
    assert status == 200 and headers["x-kanjia-candidates"] == HAIKU


MASTER = "native-master-key"


@pytest.fixture(scope="module")
def keyed(sandbox: SandboxThread, ledger: Ledger, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[ServerThread, Wire]]:
    root = tmp_path_factory.mktemp("native")
    settings = load_settings(None, sandbox_url=sandbox.url, database=str(root / "ledger.db"),
                             server={"require_keys": True})
    app = build_app(settings, env={"KANJIA_MASTER_KEY": MASTER,
                                   "KANJIA_JOURNAL_DIR": str(root / "journal"),
                                   "KANJIA_LEDGER_FLUSH_S": "0.05"}, sinks=[ledger.append])
    wire = Wire(app.services.gateway.upstream)
    with ServerThread(app) as srv:
        yield srv, wire


def _admin(url: str, method: str, path: str, body: Any = None) -> Any:
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    try:
        conn.request(method, path, body=json.dumps(body).encode() if body else None,
                     headers={"Authorization": f"Bearer {MASTER}"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_budgets_hold_on_the_native_path(keyed: tuple[ServerThread, Wire],
                                         ledger: Ledger) -> None:
    """The worst case is reserved before anything goes to Anthropic (refused: nothing
    sent), and the key is charged what the ledger recorded from Anthropic's usage."""
    srv, wire = keyed
    status, made = _admin(srv.url, "POST", "/admin/keys", {"name": "native",
                                                           "budget": "0.01USD/day"})
    assert status == 201, made
    sent_before = len(wire.calls)
    body = {"model": HAIKU, "max_tokens": 8000, "top_k": 3,  # worst case 0.032 USD
            "messages": [{"role": "user", "content": "hi [[sandbox:tokens=5]]"}]}
    status, _, data = _post(srv.url, body, headers={"x-api-key": made["key"]})
    err = json.loads(data)
    assert status == 429 and err["error"]["type"] == "rate_limit_error", err
    assert len(wire.calls) == sent_before  # refused before Anthropic was called
    status, headers, data = _post(srv.url, {**body, "max_tokens": 100},
                                  headers={"x-api-key": made["key"]})
    assert status == 200, data
    assert json.loads(wire.last()[0].body)["top_k"] == 3  # passed through
    rec = ledger.wait(headers["x-kanjia-request-id"])
    assert rec.key_id == made["id"] and rec.cost > 0
    for _ in range(200):  # settlement follows the response by a loop pass
        status, got = _admin(srv.url, "GET", f"/admin/keys/{made['id']}")
        budget = got["budgets"][0]
        if budget["reserved"] == "0":
            break
        threading.Event().wait(0.02)
    assert Decimal(budget["spent"]) == rec.cost
