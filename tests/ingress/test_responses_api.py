"""POST /v1/responses through the official openai SDK, against the sandbox: an Anthropic
upstream and a Chinese vendor (by translation) and an OpenAI upstream (passed through
natively: test_responses_native.py checks what goes over the wire)."""

from __future__ import annotations

import http.client
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import openai
import pytest

from kanjia.catalog import Usage, cost_of
from kanjia.server import ServerThread

from .conftest import Ledger

MODELS = ["anthropic/claude-3-5-haiku-20241022", "openai/gpt-4o-mini", "deepseek/deepseek-chat"]
WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


def _client(gw: ServerThread, key: str = "test") -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=20)


@pytest.fixture()
def client(gw: ServerThread) -> Iterator[openai.OpenAI]:
    with _client(gw) as c:
        yield c


def _raw(gw: ServerThread, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    u = urlparse(gw.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _events(data: bytes) -> list[dict[str, Any]]:
    out = []
    for frame in data.split(b"\n\n"):
        lines = frame.split(b"\n")
        name = next((ln[7:].decode() for ln in lines if ln.startswith(b"event: ")), None)
        payload = next((ln[6:] for ln in lines if ln.startswith(b"data: ")), None)
        if payload:
            event = json.loads(payload)
            assert event["type"] == name
            out.append(event)
    return out


@pytest.mark.parametrize("model", MODELS)
def test_create(client: openai.OpenAI, ledger: Ledger, model: str) -> None:
    raw = client.responses.with_raw_response.create(
        model=model, instructions="Answer briefly.",
        input="What is a price war? [[sandbox:tokens=20]]")
    resp = raw.parse()
    assert resp.object == "response" and resp.id.startswith("resp_")
    assert resp.status == "completed" and resp.error is None
    assert resp.output_text and resp.output[0].type == "message"
    assert resp.instructions == "Answer briefly." and resp.model == model
    assert resp.usage is not None and resp.usage.output_tokens == 20
    rec = ledger.wait(raw.headers["x-kanjia-request-id"])
    assert resp._request_id == rec.request_id
    assert rec.endpoint == "responses" and rec.status == 200
    assert rec.input_tokens == resp.usage.input_tokens
    assert rec.output_tokens == resp.usage.output_tokens


@pytest.mark.parametrize("model", MODELS)
def test_max_output_tokens_is_incomplete(client: openai.OpenAI, model: str) -> None:
    resp = client.responses.create(model=model, input="hi [[sandbox:tokens=60]]",
                                   max_output_tokens=7)
    assert resp.status == "incomplete"
    assert resp.incomplete_details is not None
    assert resp.incomplete_details.reason == "max_output_tokens"
    assert resp.usage is not None and resp.usage.output_tokens == 7


@pytest.mark.parametrize("model", MODELS)
def test_stream(client: openai.OpenAI, ledger: Ledger, model: str) -> None:
    with client.responses.stream(model=model, input="hello [[sandbox:tokens=25]]") as stream:
        events = list(stream)
        final = stream.get_final_response()
        rid = stream._response.headers["x-kanjia-request-id"]  # the helper keeps no public one
    kinds = [e.type for e in events]
    assert kinds[:5] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added",
                         "response.output_text.delta"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text and final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens == 25
    rec = ledger.wait(rid)  # (an OpenAI upstream's response id is OpenAI's own)
    assert rec.endpoint == "responses" and rec.stream and rec.output_tokens == 25


@pytest.mark.parametrize("model", MODELS)
def test_function_call_round_trip_with_previous_response(client: openai.OpenAI,
                                                         model: str) -> None:
    first = client.responses.create(model=model, tools=[WEATHER],  # type: ignore[list-item]
                                    input="Weather in Paris? [[sandbox:tool]]")
    call = next(o for o in first.output if o.type == "function_call")
    assert call.name == "get_weather" and "city" in json.loads(call.arguments)
    second = client.responses.create(
        model=model, tools=[WEATHER], previous_response_id=first.id,  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
               {"role": "user", "content": "thanks [[sandbox:tokens=10]]"}])
    assert second.output_text and second.previous_response_id == first.id
    # the stored conversation is the whole history: the second call's prompt is larger
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens


@pytest.mark.parametrize("model", MODELS)
def test_streamed_function_call(client: openai.OpenAI, model: str) -> None:
    with client.responses.stream(model=model, tools=[WEATHER],  # type: ignore[list-item]
                                 tool_choice={"type": "function", "name": "get_weather"},
                                 input="Paris?") as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    call = final.output[-1]
    assert call.type == "function_call" and json.loads(call.arguments)["city"]


@pytest.mark.parametrize("model", MODELS)
def test_custom_tool_round_trip(client: openai.OpenAI, model: str) -> None:
    """Codex's freeform apply_patch tool works with any model: offered as a function of
    one string, answered as a custom_tool_call."""
    patch: Any = {"type": "custom", "name": "apply_patch", "description": "Edit files.",
                  "format": {"type": "text"}}
    with client.responses.stream(model=model, tools=[patch], input="fix it [[sandbox:tool]]") \
            as stream:
        kinds = [e.type for e in stream]
        first = stream.get_final_response()
    assert "response.custom_tool_call_input.done" in kinds
    call = first.output[-1]
    assert call.type == "custom_tool_call" and call.name == "apply_patch"
    assert isinstance(call.input, str)
    second = client.responses.create(model=model, tools=[patch], previous_response_id=first.id,
                                     input=[{"type": "custom_tool_call_output",
                                             "call_id": call.call_id, "output": "applied"},
                                            {"role": "user", "content": "[[sandbox:tokens=5]]"}])
    assert second.status == "completed" and second.output_text


def test_retrieve_input_items_delete(client: openai.OpenAI) -> None:
    resp = client.responses.create(model="deepseek/deepseek-chat",
                                   input="remember me [[sandbox:tokens=5]]")
    got = client.responses.retrieve(resp.id)
    assert got.id == resp.id and got.output_text == resp.output_text
    items = client.responses.input_items.list(resp.id)
    assert len(items.data) == 1 and items.data[0].type == "message"
    assert items.data[0].content[0].text == "remember me [[sandbox:tokens=5]]"  # type: ignore[union-attr]
    client.responses.delete(resp.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(resp.id)


def test_store_false_is_not_kept(client: openai.OpenAI) -> None:
    resp = client.responses.create(model="deepseek/deepseek-chat", store=False,
                                   input="forget me [[sandbox:tokens=5]]")
    assert resp.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(resp.id)
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="deepseek/deepseek-chat", previous_response_id=resp.id,
                                input="again")
    assert info.value.code == "previous_response_not_found"


def test_responses_belong_to_their_key(gw: ServerThread, client: openai.OpenAI) -> None:
    resp = client.responses.create(model="deepseek/deepseek-chat",
                                   input="mine [[sandbox:tokens=5]]")
    with _client(gw, "another-key") as other:
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(resp.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.create(model="deepseek/deepseek-chat",
                                   previous_response_id=resp.id, input="x")
        with pytest.raises(openai.NotFoundError):
            other.responses.delete(resp.id)
    assert client.responses.retrieve(resp.id).id == resp.id


def test_hosted_tools_are_dropped_and_named(client: openai.OpenAI) -> None:
    tools: Any = [WEATHER, {"type": "web_search"}, {"type": "file_search",
                                                   "vector_store_ids": ["vs_1"]},
                  {"type": "code_interpreter", "container": {"type": "auto"}},
                  {"type": "namespace", "name": "codex_tools"}]
    raw = client.responses.with_raw_response.create(
        model="deepseek/deepseek-chat", tools=tools, input="hi [[sandbox:tokens=5]]")
    assert raw.parse().status == "completed"
    assert raw.headers["x-kanjia-dropped-tools"] == \
        "web_search,file_search,code_interpreter,codex_tools"
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="deepseek/deepseek-chat", tools=tools,
                                tool_choice={"type": "web_search_preview"}, input="hi")
    assert "web_search_preview" in info.value.message


def test_json_schema_text_format(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}},
              "required": ["answer"], "additionalProperties": False}
    resp = client.responses.create(
        model="openai/gpt-4o-mini", input="Give me JSON [[sandbox:tokens=30]]",
        text={"format": {"type": "json_schema", "name": "reply", "schema": schema,
                         "strict": True}})
    assert resp.text is not None and resp.text.format.type == "json_schema"
    assert resp.status == "completed"


@pytest.mark.parametrize(("body", "status", "needle"), [
    ({"input": "x"}, 400, "model"),
    ({"model": "deepseek/deepseek-chat"}, 400, "input"),
    ({"model": "deepseek/deepseek-chat", "input": 5}, 400, "input"),
    ({"model": "deepseek/deepseek-chat", "input": "x", "max_output_tokens": -1}, 400,
     "max_output_tokens"),
    ({"model": "deepseek/deepseek-chat", "input": [{"role": "wizard", "content": "x"}]},
     400, "input[0].role"),
    ({"model": "deepseek/deepseek-chat", "input": [
        {"type": "function_call_output", "call_id": "call_nowhere", "output": "x"}]},
     400, "call_nowhere"),
    ({"model": "deepseek/deepseek-chat", "input": "x", "text": {"format": {"type": "xml"}}},
     400, "text.format"),
    ({"model": "deepseek/deepseek-chat", "input": "x", "reasoning": {"effort": "extreme"}},
     400, "reasoning.effort"),
    ({"model": "deepseek/deepseek-chat", "input": "x", "background": True}, 400,
     "background"),
    ({"model": "deepseek/deepseek-chat", "input": "x", "previous_response_id": "resp_nope"},
     404, "resp_nope"),
    ({"model": "nobody/none", "input": "x"}, 404, "nobody/none"),
])
def test_errors_are_openai_shaped(gw: ServerThread, body: dict[str, Any], status: int,
                                  needle: str) -> None:
    got, _, data = _raw(gw, "POST", "/v1/responses", json.dumps(body).encode(),
                        {"Authorization": "Bearer test"})
    err = json.loads(data)["error"]
    assert got == status, err
    assert needle in err["message"] and set(err) >= {"message", "type", "code"}


def test_malformed_json_is_400(gw: ServerThread) -> None:
    got, _, data = _raw(gw, "POST", "/v1/responses", b"{oops")
    assert got == 400 and json.loads(data)["error"]["type"] == "invalid_request_error"


def test_mid_stream_failure(gw: ServerThread, ledger: Ledger) -> None:
    body = {"model": "deepseek/deepseek-chat", "stream": True,
            "input": "x [[sandbox:fault=reset]] [[sandbox:tokens=30]]"}
    status, headers, data = _raw(gw, "POST", "/v1/responses", json.dumps(body).encode())
    events = _events(data)
    assert status == 200 and events[0]["type"] == "response.created"
    kinds = [e["type"] for e in events]
    assert kinds[-2:] == ["error", "response.failed"] and "response.completed" not in kinds
    assert events[-1]["response"]["status"] == "failed"
    assert ledger.wait(headers["x-kanjia-request-id"]).status != 200


def test_unknown_response_paths(gw: ServerThread) -> None:
    for method, path in [("GET", "/v1/responses/resp_x/nothing"),
                         ("POST", "/v1/responses/resp_x"), ("GET", "/v1/responses/")]:
        status, _, data = _raw(gw, method, path)
        assert status == 404 and "error" in json.loads(data)


def _codex_tools() -> list[dict[str, Any]]:
    shell = {"type": "function", "name": "shell", "description": "Runs a shell command.",
             "strict": False,
             "parameters": {"type": "object", "properties": {
                 "command": {"type": "array", "items": {"type": "string"}},
                 "workdir": {"type": "string"}, "timeout_ms": {"type": "number"}},
                 "required": ["command"], "additionalProperties": False}}
    plan = {"type": "function", "name": "update_plan", "description": "Updates the plan.",
            "strict": False, "parameters": {"type": "object", "properties": {
                "plan": {"type": "array", "items": {"type": "object"}}},
                "required": ["plan"]}}
    return [shell, plan, {"type": "web_search"},
            {"type": "namespace", "name": "mcp__servers", "tools": []}]


def test_codex_session(gw: ServerThread, ledger: Ledger) -> None:
    """Codex CLI's shape: Responses, streamed, function tools (plus a web_search and a
    namespace tool that get dropped), ``store: false`` with the whole input each turn
    (reasoning items included), parallel_tool_calls, reasoning effort, prompt_cache_key;
    billed in the ledger, cache reads priced as cache reads."""
    nonce = secrets.token_hex(8)
    instructions = f"You are Codex {nonce}, a coding agent. " + "Be careful and precise. " * 400
    inputs: list[Any] = [
        {"type": "message", "role": "developer",
         "content": [{"type": "input_text", "text": "<permissions>workspace-write</permissions>"}]},
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "<environment_context>cwd=/repo"
                      "</environment_context>"}]},
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "List the files [[sandbox:tool]]"}]}]
    records = []
    with _client(gw) as client:
        for turn in range(3):
            with client.responses.stream(
                    model="deepseek/deepseek-chat", instructions=instructions, input=inputs,
                    tools=_codex_tools(), tool_choice="auto",  # type: ignore[arg-type]
                    parallel_tool_calls=False, store=False,
                    reasoning={"effort": "medium", "summary": "auto"},
                    include=["reasoning.encrypted_content"],
                    extra_body={"prompt_cache_key": nonce}) as stream:
                for _ in stream:
                    pass
                final = stream.get_final_response()
            records.append(ledger.wait(final.id.removeprefix("resp_")))
            if turn < 2:
                call = next(o for o in final.output if o.type == "function_call")
                assert call.name == "shell"
                inputs += [{"type": "reasoning", "id": f"rs_{turn}", "summary": [],
                            "encrypted_content": "opaque"},
                           {"type": "function_call", "call_id": call.call_id, "name": call.name,
                            "arguments": call.arguments},
                           {"type": "function_call_output", "call_id": call.call_id,
                            "output": json.dumps({"output": "README.md\nsrc\n",
                                                  "metadata": {"exit_code": 0}})},
                           {"type": "message", "role": "user", "content": [
                               {"type": "input_text", "text": "go on [[sandbox:tool]]"
                                if turn == 0 else "done? [[sandbox:tokens=12]]"}]}]
            else:
                assert final.status == "completed" and final.output_text
    assert all(r.endpoint == "responses" and r.stream and r.status == 200 for r in records)
    later = records[1]
    assert records[0].cached_tokens == 0 and later.cached_tokens > 1000
    entry = gw.app.services.catalog.get("deepseek", "deepseek-chat")
    assert entry is not None
    at = datetime.fromtimestamp(later.ts, UTC)
    usage = Usage(later.input_tokens, later.cached_tokens, 0, later.output_tokens, 0)
    assert later.cost == cost_of(usage, entry, at).amount
    assert later.cost < cost_of(Usage(later.input_tokens, 0, 0, later.output_tokens, 0),
                                entry, at).amount


def test_two_workers_share_stored_responses(sandbox: Any, tmp_path: Any) -> None:
    """With a SQLite ledger, stored responses live in a file beside it: a follow-up that
    lands on another worker finds the conversation."""
    from kanjia.config import load_settings
    from kanjia.server import build_app

    settings = load_settings(None, sandbox_url=sandbox.url,
                             database=str(tmp_path / "ledger.db"))
    with ServerThread(build_app(settings, env={})) as one, \
            ServerThread(build_app(settings, env={})) as two, \
            _client(one) as c1, _client(two) as c2:
        first = c1.responses.create(model="deepseek/deepseek-chat", tools=[WEATHER],  # type: ignore[list-item]
                                    input="Weather? [[sandbox:tool]]")
        call = next(o for o in first.output if o.type == "function_call")
        second = c2.responses.create(
            model="deepseek/deepseek-chat", previous_response_id=first.id,
            tools=[WEATHER],  # type: ignore[list-item]
            input=[{"type": "function_call_output", "call_id": call.call_id,
                    "output": "rain"}])
        assert second.status == "completed"
        assert c2.responses.retrieve(first.id).id == first.id
        c2.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            c1.responses.retrieve(first.id)
    assert (tmp_path / "ledger.db.responses").exists()


def test_reasoning_item(client: openai.OpenAI) -> None:
    with client.responses.stream(model="deepseek/deepseek-reasoner",
                                 input="why? [[sandbox:tokens=10]]") as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert [o.type for o in final.output] == ["reasoning", "message"]
    assert "response.reasoning_text.delta" in kinds
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens > 0
