"""POST /v1/responses passed through to an OpenAI upstream (a vendor whose vendors.toml row
says it serves the Responses API): what the client wrote is what OpenAI receives (hosted
tools, reasoning items with their encrypted content, ``include``), with ``store: false``
and a ``previous_response_id`` expanded from kanjia's own store; what OpenAI answers is
what the client gets (output items, ids, its own typed events), with the requested model
name and ``usage.cost``, billed from OpenAI's Responses usage fields. A candidate that does
not speak the Responses API still gets a translation."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import openai
import pytest
from tests.reliability._util import set_fault

from kanjia.catalog import Usage, cost_of
from kanjia.config import load_settings
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app

from .conftest import Ledger, sse_events
from .test_messages_native import Wire, _post

MINI = "openai/gpt-4o-mini"
WIRE_MODEL = "gpt-4o-mini"
WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}
#: fields the gateway sets in the answer: the requested model, the client's own echoes of
#: ``store``/``previous_response_id`` (OpenAI was sent ``store: false`` and none)
_SET = ("model", "store", "previous_response_id")


@pytest.fixture(scope="module")
def native_gw(sandbox: SandboxThread, ledger: Ledger) -> Iterator[tuple[ServerThread, Wire]]:
    settings = load_settings(None, sandbox_url=sandbox.url, routes={
        "gpt-first": {"models": [MINI, "deepseek/deepseek-chat"], "objective": "ordered"}})
    app = build_app(settings, env={}, sinks=[ledger.append])
    wire = Wire(app.services.gateway.upstream)
    with ServerThread(app) as srv:
        yield srv, wire


def _client(srv: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.url + "/v1", api_key="t", max_retries=0, timeout=20)


def _body(nonce: str, stream: bool = False) -> dict[str, Any]:
    """What translation would lose: a hosted tool, an encrypted reasoning item, include."""
    return {
        "model": MINI, "instructions": f"Session {nonce}. Be exact.",
        "tools": [{"type": "web_search", "search_context_size": "low"}, WEATHER],
        "include": ["reasoning.encrypted_content", "web_search_call.action.sources"],
        "reasoning": {"effort": "low", "summary": "auto"},
        "prompt_cache_key": nonce, "service_tier": "default",
        "input": [
            {"type": "message", "role": "user", "content": "What is 2 + 2?"},
            {"type": "reasoning", "id": "rs_client1", "summary": [],
             "encrypted_content": "gAAAAB-opaque-client-reasoning"},
            {"type": "message", "role": "assistant",
             "content": [{"type": "output_text", "text": "4"}]},
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "And 3 + 3? [[sandbox:tokens=9]]"}]}],
        **({"stream": True} if stream else {}),
    }


def _unset(obj: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with the fields the gateway sets taken from ``sent`` and no cost."""
    out = {**obj, **{k: sent.get(k) for k in _SET}}
    if isinstance(out.get("usage"), dict):
        out["usage"] = {k: v for k, v in out["usage"].items()
                        if k not in ("cost", "cost_currency")}
    return out


def test_the_upstream_gets_the_clients_body(native_gw: tuple[ServerThread, Wire],
                                            ledger: Ledger) -> None:
    srv, wire = native_gw
    body = _body(secrets.token_hex(6))
    status, headers, data = _post(srv.url, body, "/v1/responses",
                                  {"authorization": "Bearer t"})
    assert status == 200, data
    req, upstream = wire.last("/responses")
    assert req.url.endswith("/openai/responses")
    assert json.loads(req.body) == {**body, "model": WIRE_MODEL, "store": False}
    assert req.headers.get("Authorization") != "Bearer t"  # the deployment's key
    sent, got = json.loads(upstream), json.loads(data)
    # OpenAI's answer unchanged: its id, output items, status, usage
    assert got["id"] == sent["id"] and got["output"] == sent["output"]
    assert got["model"] == MINI and got["store"] is True  # the client's, as translated
    assert _unset(got, sent) == sent
    assert headers["x-kanjia-model"] == WIRE_MODEL and "x-kanjia-dropped-tools" not in headers
    usage = got["usage"]
    assert usage["output_tokens"] == sent["usage"]["output_tokens"] == 9
    rec = ledger.wait(headers["x-kanjia-request-id"])
    assert rec.endpoint == "responses" and rec.status == 200 and not rec.usage_estimated
    assert rec.input_tokens == sent["usage"]["input_tokens"]
    assert rec.output_tokens == 9
    assert Decimal(str(usage["cost"])) == round(rec.cost, 9) > 0
    assert usage["cost_currency"] == rec.currency == "USD"


def test_stream_events_pass_through(native_gw: tuple[ServerThread, Wire],
                                    ledger: Ledger) -> None:
    srv, wire = native_gw
    body = _body(secrets.token_hex(6), stream=True)
    status, headers, data = _post(srv.url, body, "/v1/responses")
    assert status == 200
    req, upstream = wire.last("/responses")
    assert json.loads(req.body) == {**body, "model": WIRE_MODEL, "store": False}
    mine, theirs = sse_events(data), sse_events(upstream)
    assert [n for n, _ in mine] == [n for n, _ in theirs]  # OpenAI's own sequence
    assert mine[-1][0] == "response.completed"
    assert [e["sequence_number"] for _, e in mine] == list(range(len(mine)))
    final = dict(mine[-1][1]["response"]["usage"])
    for (name, got), (_, sent) in zip(mine, theirs, strict=True):
        assert got["type"] == name
        if "response" in got:
            assert got["response"]["model"] == MINI
            if name == "response.completed":
                assert got["response"]["usage"]["cost"] > 0
                assert got["response"]["usage"]["cost_currency"] == "USD"
            got["response"] = _unset(got["response"], sent["response"])
        assert got == sent, name
    rec = ledger.wait(headers["x-kanjia-request-id"])
    assert rec.stream and rec.status == 200 and not rec.usage_estimated
    assert rec.output_tokens == final["output_tokens"] == 9
    assert Decimal(str(final["cost"])) == round(rec.cost, 9)


def test_sdk_create_stream_and_previous_response(native_gw: tuple[ServerThread, Wire]) -> None:
    """The official SDK, multi-turn through pass-through: a function call, its output sent
    with ``previous_response_id`` (OpenAI gets the whole conversation, store false), then
    a streamed turn continuing the stored stream's answer."""
    srv, wire = native_gw
    nonce = secrets.token_hex(6)
    with _client(srv) as client:
        first = client.responses.create(model=MINI, tools=[WEATHER],  # type: ignore[list-item]
                                        instructions=f"Weather bot {nonce}.",
                                        input="Weather in Oslo? [[sandbox:tool]]")
        req, upstream = wire.last("/responses")
        assert first.id == json.loads(upstream)["id"]  # OpenAI's own id
        call = next(o for o in first.output if o.type == "function_call")
        assert call.name == "get_weather" and json.loads(call.arguments)["city"]
        output = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
        with client.responses.stream(model=MINI, tools=[WEATHER],  # type: ignore[list-item]
                                     previous_response_id=first.id,
                                     input=[output]) as stream:
            kinds = [e.type for e in stream]
            second = stream.get_final_response()
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
        assert "response.output_text.delta" in kinds and second.output_text
        assert second.previous_response_id == first.id and second.model == MINI
        req, _ = wire.last("/responses")
        sent = json.loads(req.body)
        assert "previous_response_id" not in sent and sent["store"] is False
        assert "instructions" not in sent  # as at OpenAI: not carried over
        assert sent["input"] == [
            {"type": "message", "role": "user", "content": "Weather in Oslo? [[sandbox:tool]]"},
            {k: v for k, v in call.model_dump(exclude_none=True).items() if k != "id"},
            output]
        third = client.responses.create(model=MINI, previous_response_id=second.id,
                                        input="thanks [[sandbox:tokens=5]]")
        assert third.output_text and third.usage is not None
        assert third.usage.output_tokens == 5
        sent = json.loads(wire.last("/responses")[0].body)
        assert [i.get("type") for i in sent["input"]] == [
            "message", "function_call", "function_call_output", "message", "message"]
        assert sent["input"][3]["content"][0]["text"] == second.output_text
        assert client.responses.retrieve(second.id).output_text == second.output_text


def test_a_translated_conversation_continues_natively(
        native_gw: tuple[ServerThread, Wire]) -> None:
    """kanjia keeps every stored conversation as Responses items too: one begun on
    DeepSeek (translated) goes on at OpenAI (passed through) with its whole input."""
    srv, wire = native_gw
    with _client(srv) as client:
        first = client.responses.create(model="deepseek/deepseek-chat",
                                        input="remember 7 [[sandbox:tokens=4]]")
        second = client.responses.create(model=MINI, previous_response_id=first.id,
                                         input="what did I say? [[sandbox:tokens=3]]")
    assert second.output_text and second.previous_response_id == first.id
    sent = json.loads(wire.last("/responses")[0].body)
    assert [(i["type"], i["role"]) for i in sent["input"]] == [
        ("message", "user"), ("message", "assistant"), ("message", "user")]
    assert all("id" not in i for i in sent["input"])
    assert sent["input"][1]["content"][0]["text"] == first.output_text


def test_failover_to_another_vendor_translates(native_gw: tuple[ServerThread, Wire],
                                               sandbox: SandboxThread) -> None:
    """A route whose OpenAI candidate fails goes on to DeepSeek by translation (the hosted
    tool dropped, named in a header); the client still gets a Responses object."""
    srv, wire = native_gw
    set_fault(sandbox.url, vendor="openai", fault="server_error", count=1)
    body = {"model": "gpt-first", "tools": [{"type": "web_search"}],
            "input": "hi [[sandbox:tokens=6]]"}
    status, headers, data = _post(srv.url, body, "/v1/responses")
    assert status == 200, data
    assert headers["x-kanjia-vendor"] == "deepseek"
    assert headers["x-kanjia-attempts"].startswith("openai/")
    assert headers["x-kanjia-dropped-tools"] == "web_search"
    resp = json.loads(data)
    assert resp["object"] == "response" and resp["model"] == "gpt-first"
    assert resp["output"][0]["content"][0]["type"] == "output_text"
    assert resp["usage"]["output_tokens"] == 6
    req, _ = wire.last("/chat/completions")
    assert "tools" not in json.loads(req.body)  # the chat form: translated, not passed
    # the same route with a healthy OpenAI passes through
    status, headers, data = _post(srv.url, body, "/v1/responses")
    assert status == 200 and headers["x-kanjia-vendor"] == "openai"
    assert json.loads(wire.last("/responses")[0].body)["tools"] == [{"type": "web_search"}]


PDF = {"type": "input_file", "filename": "spec.pdf",
       "file_data": "data:application/pdf;base64,JVBERi0xLjQK"}


@pytest.mark.parametrize("extra", [
    {"tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search"}},
    {"input": [{"role": "user", "content": [
        PDF, {"type": "input_text", "text": "Summarise. [[sandbox:tokens=5]]"}]},
        {"type": "local_shell_call_output", "call_id": "ls_1", "output": "ok"}]},
], ids=["forced-hosted-tool", "input-file"])
def test_what_only_openai_reads_goes_only_to_openai(native_gw: tuple[ServerThread, Wire],
                                                     ledger: Ledger, extra: dict[str, Any]
                                                     ) -> None:
    """A forced hosted tool, a PDF ``input_file``, an item type the translator does not
    know: to OpenAI they pass through (and are billed), to any other vendor they are a
    400 naming the field, and a route keeps only its OpenAI candidate."""
    srv, wire = native_gw
    body = {"model": MINI, "input": "news? [[sandbox:tokens=5]]", **extra}
    status, headers, data = _post(srv.url, body, "/v1/responses")
    assert status == 200, data
    assert json.loads(wire.last("/responses")[0].body) == {**body, "model": WIRE_MODEL,
                                                            "store": False}
    assert json.loads(data)["usage"]["output_tokens"] == 5
    assert ledger.wait(headers["x-kanjia-request-id"]).status == 200
    status, _, data = _post(srv.url, {**body, "model": "deepseek/deepseek-chat"},
                            "/v1/responses")
    err = json.loads(data)["error"]
    assert status == 400 and err["type"] == "invalid_request_error"
    assert "web_search" in err["message"] or "input[0].content[0]" in err["message"]
    status, headers, _ = _post(srv.url, {**body, "model": "gpt-first"}, "/v1/responses")
    assert status == 200 and headers["x-kanjia-candidates"] == MINI


def test_cached_tokens_are_billed_at_the_cache_price(native_gw: tuple[ServerThread, Wire],
                                                     ledger: Ledger) -> None:
    """A long shared prefix: the second call reads it from OpenAI's prompt cache
    (``input_tokens_details.cached_tokens``) and the ledger prices those tokens at the
    catalog's cache price, the rest at the input price."""
    srv, wire = native_gw
    nonce = secrets.token_hex(8)
    instructions = f"Agent {nonce}. " + "Follow the repository rules. " * 400
    records, usages = [], []
    with _client(srv) as client:
        for turn in range(2):
            raw = client.responses.with_raw_response.create(
                model=MINI, instructions=instructions,
                input=f"turn {turn} [[sandbox:tokens=11]]")
            resp = raw.parse()
            usages.append(resp.usage)
            assert wire.calls[-1][0].url.endswith("/openai/responses")  # passed through
            records.append(ledger.wait(raw.headers["x-kanjia-request-id"]))
    first, later = records
    assert first.cached_tokens == 0
    assert usages[1] is not None
    assert later.cached_tokens == usages[1].input_tokens_details.cached_tokens > 1000
    entry = srv.app.services.catalog.get("openai", WIRE_MODEL)
    assert entry is not None
    at = datetime.fromtimestamp(later.ts, UTC)
    period = entry.price_at(at)
    assert period is not None and period.cached_mtok is not None
    assert period.cached_mtok < period.input_mtok
    rates = period.rates
    expected = ((later.input_tokens - later.cached_tokens) * rates.input
                + later.cached_tokens * rates.cached + later.output_tokens * rates.output)
    assert later.cost == expected  # every cached token at the cache price, never zero
    assert later.cost == cost_of(Usage(later.input_tokens, later.cached_tokens, 0,
                                       later.output_tokens), entry, at).amount
    assert Decimal(str(getattr(usages[1], "cost"))) == round(later.cost, 9)  # noqa: B009


@pytest.mark.parametrize("fault", ["reset", "truncate"])
def test_a_cut_stream_ends_with_an_error(native_gw: tuple[ServerThread, Wire],
                                         ledger: Ledger, fault: str) -> None:
    srv, wire = native_gw
    body = {"model": MINI, "stream": True,
            "input": f"x [[sandbox:fault={fault}]] [[sandbox:tokens=30]]"}
    status, headers, data = _post(srv.url, body, "/v1/responses")
    assert wire.calls[-1][0].url.endswith("/openai/responses")
    events = sse_events(data)
    names = [n for n, _ in events]
    assert status == 200 and names[0] == "response.created"
    assert names[-2:] == ["error", "response.failed"] and "response.completed" not in names
    assert [e["sequence_number"] for _, e in events] == list(range(len(events)))
    assert events[-1][1]["response"]["status"] == "failed"
    rec = ledger.wait(headers["x-kanjia-request-id"])
    assert rec.status != 200  # a broken stream is never a success


def test_the_expanded_input_keeps_only_what_openai_can_read_back() -> None:
    """With ``store: false`` OpenAI can look nothing up: a stored reasoning item goes back
    only with its encrypted content, and message/call ids are left out."""
    from kanjia.ingress import native_body

    prior = [{"type": "message", "role": "user", "content": "hi", "id": "msg_1"},
             {"type": "reasoning", "id": "rs_plain", "summary": []},
             {"type": "reasoning", "id": "rs_enc", "summary": [], "encrypted_content": "gA"},
             {"type": "web_search_call", "id": "ws_1", "status": "completed",
              "action": {"type": "search", "query": "q"}},
             {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f",
              "arguments": "{}"}]
    body = {"model": MINI, "previous_response_id": "resp_x", "input": "next",
            "include": ["reasoning.encrypted_content"]}
    out = native_body(body, prior)
    assert out["store"] is False and "previous_response_id" not in out
    assert out["include"] == body["include"] and body["previous_response_id"] == "resp_x"
    assert out["input"] == [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "reasoning", "id": "rs_enc", "summary": [], "encrypted_content": "gA"},
        prior[3],
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "message", "role": "user", "content": "next"}]
    # no previous response: the input exactly as the client wrote it
    assert native_body({"model": MINI, "input": "x", "store": True}, []) == \
        {"model": MINI, "input": "x", "store": False}


@pytest.mark.parametrize("event", [
    {"type": "error", "code": "server_error", "message": "boom", "sequence_number": 3},
    {"type": "response.failed", "sequence_number": 3, "response": {
        "object": "response", "status": "failed",
        "error": {"code": "rate_limit_exceeded", "message": "slow down"}}}])
def test_a_vendor_failure_event_is_an_error_and_never_complete(event: dict[str, Any]) -> None:
    from kanjia.errors import KanjiaError
    from kanjia.vendors import adapter_for, load_vendor_specs, native_adapter

    adapter = native_adapter(adapter_for(load_vendor_specs()["openai"]), "responses")
    assert adapter is not None  # vendors.toml: openai serves the Responses API
    assert native_adapter(adapter_for(load_vendor_specs()["deepseek"]), "responses") is None
    stream = adapter.native_stream("responses", WIRE_MODEL)
    created = {"type": "response.created", "sequence_number": 0,
               "response": {"object": "response", "status": "in_progress", "usage": None}}
    assert stream.feed("response.created", json.dumps(created).encode())
    with pytest.raises(KanjiaError):
        stream.feed(event["type"], json.dumps(event).encode())
    assert not stream.complete and stream.usage is None
    done = {"type": "response.completed", "sequence_number": 4, "response": {
        "object": "response", "status": "completed",
        "usage": {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 20},
                  "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 3}}}}
    stream.feed("response.completed", json.dumps(done).encode())
    assert stream.complete and stream.usage is not None
    assert (stream.usage.input_tokens, stream.usage.cached_tokens, stream.usage.output_tokens,
            stream.usage.reasoning_tokens) == (50, 20, 7, 3)


def test_codex_session_on_openai(native_gw: tuple[ServerThread, Wire], ledger: Ledger) -> None:
    """Codex CLI's shape against an OpenAI upstream: streamed, ``store: false`` with the
    whole input each turn (encrypted reasoning items included), function tools plus a
    web_search and a namespace tool; each turn reaches OpenAI as Codex wrote it (nothing
    dropped) and turn 2 reads the prefix from OpenAI's cache, priced as cache reads."""
    from .test_responses_api import _codex_tools

    srv, wire = native_gw
    nonce = secrets.token_hex(8)
    inputs: list[Any] = [
        {"type": "message", "role": "developer",
         "content": [{"type": "input_text", "text": "<permissions>workspace-write</permissions>"}]},
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "List the files [[sandbox:tool]]"}]}]
    records = []
    for turn in range(2):
        body = {"model": MINI, "instructions": f"You are Codex {nonce}. " + "Be precise. " * 500,
                "input": inputs, "tools": _codex_tools(), "tool_choice": "auto",
                "parallel_tool_calls": False, "store": False, "stream": True,
                "reasoning": {"effort": "medium", "summary": "auto"},
                "include": ["reasoning.encrypted_content"], "prompt_cache_key": nonce}
        status, headers, data = _post(srv.url, body, "/v1/responses")
        assert status == 200 and "x-kanjia-dropped-tools" not in headers
        assert json.loads(wire.last("/responses")[0].body) == {**body, "model": WIRE_MODEL}
        events = sse_events(data)
        assert events[-1][0] == "response.completed"
        final = events[-1][1]["response"]
        assert final["store"] is False
        records.append(ledger.wait(headers["x-kanjia-request-id"]))
        call = next(o for o in final["output"] if o["type"] == "function_call")
        assert call["name"] == "shell"
        inputs = [*inputs,
                  {"type": "reasoning", "id": f"rs_{turn}", "summary": [],
                   "encrypted_content": f"opaque-{turn}"},
                  {k: v for k, v in call.items() if k not in ("id", "status")},
                  {"type": "function_call_output", "call_id": call["call_id"],
                   "output": json.dumps({"output": "README.md\n", "metadata": {"exit_code": 0}})},
                  {"type": "message", "role": "user", "content": [
                      {"type": "input_text", "text": "go on [[sandbox:tool]]"}]}]
    first, later = records
    assert all(r.stream and r.status == 200 and r.vendor == "openai" for r in records)
    assert first.cached_tokens == 0 and later.cached_tokens > 1000
    entry = srv.app.services.catalog.get("openai", WIRE_MODEL)
    assert entry is not None
    at = datetime.fromtimestamp(later.ts, UTC)
    assert later.cost == cost_of(Usage(later.input_tokens, later.cached_tokens, 0,
                                       later.output_tokens), entry, at).amount
    assert later.cost < cost_of(Usage(later.input_tokens, 0, 0, later.output_tokens),
                                entry, at).amount
