"""POST /v1/messages through the official anthropic SDK, against the sandbox: an
Anthropic upstream, an OpenAI upstream and a Chinese vendor (all by translation)."""

from __future__ import annotations

import http.client
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import anthropic
import pytest

from kanjia.catalog import Usage, cost_of
from kanjia.config import load_settings
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app

from .conftest import Ledger, sse_events

MODELS = ["anthropic/claude-3-5-haiku-20241022", "openai/gpt-4o-mini", "deepseek/deepseek-chat"]
WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}


@pytest.fixture()
def client(gw: ServerThread) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gw.url, api_key="test", max_retries=0,
                             timeout=20) as c:
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


def _request_id(message_id: str) -> str:
    """What of the request id a message id carries (``Ledger.wait`` finds it by that)."""
    return message_id.removeprefix("msg_")


@pytest.mark.parametrize("model", MODELS)
def test_create(client: anthropic.Anthropic, ledger: Ledger, model: str) -> None:
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=200, system="Answer briefly.",
        messages=[{"role": "user", "content": "What is a price war? [[sandbox:tokens=20]]"}])
    msg = raw.parse()
    assert msg.type == "message" and msg.role == "assistant" and msg.id.startswith("msg_")
    assert msg.model == model
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.content and msg.content[0].type == "text" and msg.content[0].text
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert msg.usage.cache_read_input_tokens == 0
    rec = ledger.wait(raw.headers["x-kanjia-request-id"])
    assert msg._request_id == rec.request_id
    assert rec.endpoint == "messages" and rec.status == 200
    assert rec.output_tokens == msg.usage.output_tokens
    assert rec.input_tokens == msg.usage.input_tokens
    assert raw.headers["x-kanjia-cost"].split()[0] != ""


@pytest.mark.parametrize("model", MODELS)
def test_max_tokens_stop_reason(client: anthropic.Anthropic, model: str) -> None:
    msg = client.messages.create(model=model, max_tokens=5,
                                 messages=[{"role": "user", "content": "hi [[sandbox:tokens=50]]"}])
    assert msg.stop_reason == "max_tokens"
    assert msg.usage.output_tokens == 5


@pytest.mark.parametrize("model", MODELS)
def test_stream(client: anthropic.Anthropic, ledger: Ledger, model: str) -> None:
    prompt = [{"role": "user", "content": "hello [[sandbox:tokens=20]]"}]
    with client.messages.stream(model=model, max_tokens=100,
                                messages=prompt) as stream:  # type: ignore[arg-type]
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
        text = stream.get_final_text()
        rid = stream.response.headers["x-kanjia-request-id"]
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop" and kinds[-2] == "message_delta"
    assert "content_block_start" in kinds and "content_block_stop" in kinds
    assert final.stop_reason == "end_turn" and text and final.content[0].text == text
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0
    rec = ledger.wait(rid)  # an Anthropic upstream's own message id is passed through
    assert rec.endpoint == "messages" and rec.stream and not rec.usage_estimated
    assert rec.output_tokens == final.usage.output_tokens


def test_stream_event_sequence_on_the_wire(gw: ServerThread) -> None:
    body = {"model": "deepseek/deepseek-chat", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "hi [[sandbox:tokens=12]]"}]}
    status, headers, data = _raw(gw, "POST", "/v1/messages", json.dumps(body).encode(),
                                 {"x-api-key": "test", "anthropic-version": "2023-06-01"})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    names = [n for n, _ in sse_events(data)]
    assert names[:4] == ["message_start", "ping", "content_block_start", "content_block_delta"]
    assert names[-4:] == ["content_block_delta", "content_block_stop", "message_delta",
                          "message_stop"]
    events = dict(sse_events(data))
    assert events["message_delta"]["delta"] == {"stop_reason": "end_turn",
                                                "stop_sequence": None}
    assert events["message_delta"]["usage"]["output_tokens"] == 12
    assert events["message_start"]["message"]["content"] == []
    for name, payload in sse_events(data):
        assert payload["type"] == name


@pytest.mark.parametrize("model", MODELS)
def test_tool_round_trip(client: anthropic.Anthropic, model: str) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris? [[sandbox:tool]]"}]
    first = client.messages.create(model=model, max_tokens=200, tools=[WEATHER],
                                   messages=messages)
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input, dict) and "city" in use.input
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                                   for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                               "content": "sunny, 21°C"},
                                              {"type": "text", "text": "[[sandbox:tokens=15]]"}]}]
    second = client.messages.create(model=model, max_tokens=4000, tools=[WEATHER],
                                    messages=messages)
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text" and second.content[0].text


@pytest.mark.parametrize("model", MODELS)
def test_streamed_tool_use(client: anthropic.Anthropic, model: str) -> None:
    with client.messages.stream(model=model, max_tokens=200, tools=[WEATHER],
                                tool_choice={"type": "tool", "name": "get_weather"},
                                messages=[{"role": "user", "content": "Paris?"}]) as stream:
        kinds = [(e.type, getattr(getattr(e, "delta", None), "type", None)) for e in stream]
        final = stream.get_final_message()
    assert ("content_block_delta", "input_json_delta") in kinds
    assert final.stop_reason == "tool_use"
    use = next(b for b in final.content if b.type == "tool_use")
    assert use.name == "get_weather" and "city" in use.input


def test_count_tokens(client: anthropic.Anthropic) -> None:
    short = client.messages.count_tokens(model="deepseek/deepseek-chat",
                                         messages=[{"role": "user", "content": "hi"}])
    long = client.messages.count_tokens(model="deepseek/deepseek-chat", system="Be brief.",
                                        tools=[WEATHER],
                                        messages=[{"role": "user", "content": "hi " * 200}])
    assert 0 < short.input_tokens < long.input_tokens
    assert long.input_tokens > 200


@pytest.mark.parametrize(("kwargs", "status", "kind", "field"), [
    ({"model": "nobody/none"}, 404, "not_found_error", "nobody/none"),
    ({"model": "deepseek/deepseek-chat", "max_tokens": 0}, 400, "invalid_request_error",
     "max_tokens"),
    ({"model": "deepseek/deepseek-chat", "extra_body": {"temperature": "hot"}}, 400,
     "invalid_request_error", "temperature"),
    ({"model": "deepseek/deepseek-chat", "messages": [{"role": "robot", "content": "x"}]},
     400, "invalid_request_error", "messages.0.role"),
    ({"model": "deepseek/deepseek-chat", "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_nowhere", "content": "x"}]}]},
     400, "invalid_request_error", "toolu_nowhere"),
    ({"model": "deepseek/deepseek-chat", "tool_choice": {"type": "sometimes"}}, 400,
     "invalid_request_error", "tool_choice"),
    ({"model": "deepseek/deepseek-chat",
      "messages": [{"role": "user", "content": "x [[sandbox:fault=rate_limit]]"}]}, 429,
     "rate_limit_error", ""),
    ({"model": "deepseek/deepseek-chat",
      "messages": [{"role": "user", "content": "x [[sandbox:fault=overloaded]]"}]}, 529,
     "overloaded_error", ""),
])
def test_errors_are_anthropic_shaped(client: anthropic.Anthropic, kwargs: dict[str, Any],
                                     status: int, kind: str, field: str) -> None:
    body: dict[str, Any] = {"max_tokens": 10,
                            "messages": [{"role": "user", "content": "hi"}], **kwargs}
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(**body)
    err = info.value
    assert err.status_code == status
    assert isinstance(err.body, dict) and err.body["type"] == "error"
    assert err.body["error"]["type"] == kind and field in err.body["error"]["message"]
    assert set(err.body) == {"type", "error"}


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1]",
                                 b'{"model": "deepseek/deepseek-chat", "max_tokens": 5}',
                                 b'{"model": "deepseek/deepseek-chat", "messages": '
                                 b'[{"role": "user", "content": "x"}]}'])
def test_malformed_bodies_get_anthropic_400(gw: ServerThread, raw: bytes) -> None:
    status, _, data = _raw(gw, "POST", "/v1/messages", raw, {"x-api-key": "t"})
    body = json.loads(data)
    assert status == 400, body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"


def test_mid_stream_failure_is_an_error_event(gw: ServerThread, ledger: Ledger,
                                              client: anthropic.Anthropic) -> None:
    body = {"model": "deepseek/deepseek-chat", "max_tokens": 100, "stream": True,
            "messages": [{"role": "user",
                          "content": "x [[sandbox:fault=reset]] [[sandbox:tokens=30]]"}]}
    status, headers, data = _raw(gw, "POST", "/v1/messages", json.dumps(body).encode(),
                                 {"x-api-key": "t"})
    names = [n for n, _ in sse_events(data)]
    assert status == 200 and names[0] == "message_start"
    assert names[-1] == "error" and "message_stop" not in names
    assert dict(sse_events(data))["error"]["error"]["type"] in ("api_error", "overloaded_error")
    rec = ledger.wait(headers["x-kanjia-request-id"])
    assert rec.status != 200  # a broken stream is never a success
    with pytest.raises(anthropic.APIStatusError), client.messages.stream(
            model="deepseek/deepseek-chat", max_tokens=100,
            messages=[{"role": "user", "content": body["messages"][0]["content"]}]) as s:
        for _ in s:
            pass


def test_head_probes_and_unknown_endpoint(gw: ServerThread) -> None:
    for path in ("/", "/v1"):
        status, _, data = _raw(gw, "HEAD", path)
        assert status == 200 and data == b""
    for method, path in (("GET", "/v1/messages"), ("POST", "/v1/messages/batches")):
        status, _, data = _raw(gw, method, path)
        assert status == 404
        assert json.loads(data)["error"]["type"] == "not_found_error"
    status, _, data = _raw(gw, "POST", "/v1/nowhere", b"{}")
    err = json.loads(data)["error"]
    assert status == 404 and err["code"] == "unknown_endpoint"
    assert "does not exist" in err["message"]


@pytest.fixture(scope="module")
def keyed_gw(sandbox: SandboxThread) -> Iterator[ServerThread]:
    settings = load_settings(None, sandbox_url=sandbox.url, server={"require_keys": True})
    with ServerThread(build_app(settings, env={"KANJIA_MASTER_KEY": "master-secret"})) as srv:
        yield srv


def test_keys_by_x_api_key_or_bearer(keyed_gw: ServerThread) -> None:
    """x-api-key and Authorization: Bearer both authenticate; a bad key is a 401
    authentication_error that never echoes the key."""
    msgs = [{"role": "user", "content": "hi"}]
    good = anthropic.Anthropic(base_url=keyed_gw.url, api_key="master-secret", max_retries=0)
    assert good.messages.create(model="deepseek/deepseek-chat", max_tokens=5,
                                messages=msgs).content  # type: ignore[arg-type]
    bearer = anthropic.Anthropic(base_url=keyed_gw.url, auth_token="master-secret",
                                 max_retries=0)
    assert bearer.messages.create(model="deepseek/deepseek-chat", max_tokens=5,
                                  messages=msgs).content  # type: ignore[arg-type]
    bad = anthropic.Anthropic(base_url=keyed_gw.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        bad.messages.create(model="deepseek/deepseek-chat", max_tokens=5,
                            messages=msgs)  # type: ignore[arg-type]
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert "wrong" not in str(info.value.body)


def _claude_code_tools(n: int) -> list[dict[str, Any]]:
    tools = [WEATHER]
    for i in range(n - 1):
        tools.append({"name": f"tool_{i}", "description": f"Tool number {i}. " * 5,
                      "input_schema": {"type": "object",
                                       "properties": {"path": {"type": "string"},
                                                      "limit": {"type": "integer"}},
                                       "required": ["path"]}})
    tools.append({"type": "web_search_20250305", "name": "web_search", "max_uses": 5})
    return tools


def test_claude_code_session(gw: ServerThread, ledger: Ledger, sandbox: SandboxThread) -> None:
    """Claude Code's shape: beta endpoint (?beta=true), anthropic-beta headers, a long
    system prompt in cache_control blocks, many tools, adaptive thinking and an effort,
    streamed, a multi-turn tool session; billed in the ledger with cache reads priced as
    cache reads (DeepSeek caches prompt prefixes by itself)."""
    nonce = secrets.token_hex(8)
    system = [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI."},
              {"type": "text", "text": f"Session {nonce}. " + "Follow the repository rules. " * 400,
               "cache_control": {"type": "ephemeral"}}]
    tools = _claude_code_tools(14)
    client = anthropic.Anthropic(base_url=gw.url, api_key="test", max_retries=0,
                                 default_headers={"anthropic-beta":
                                                  "claude-code-20250219,"
                                                  "interleaved-thinking-2025-05-14",
                                                  "x-app": "cli"})
    messages: list[Any] = [{"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>context</system-reminder>"},
        {"type": "text", "text": "What is the weather in Paris? [[sandbox:tool]]",
         "cache_control": {"type": "ephemeral"}}]}]
    records = []
    for turn in range(3):
        with client.beta.messages.stream(
                model="deepseek/deepseek-chat", max_tokens=2000, system=system,  # type: ignore[arg-type]
                tools=tools, messages=messages,  # type: ignore[arg-type]
                thinking={"type": "adaptive"}, output_config={"effort": "high"},  # type: ignore[typeddict-item]
                metadata={"user_id": f"user_{nonce}"},
                betas=["claude-code-20250219"]) as stream:
            for _ in stream:
                pass
            final = stream.get_final_message()
        records.append(ledger.wait(_request_id(final.id)))
        if turn < 2:
            assert final.stop_reason == "tool_use"
            use = next(b for b in final.content if b.type == "tool_use")
            messages += [{"role": "assistant",
                          "content": [b.model_dump(exclude_none=True) for b in final.content]},
                         {"role": "user", "content": [
                             {"type": "tool_result", "tool_use_id": use.id,
                              "content": [{"type": "text", "text": "sunny"}]},
                             {"type": "text", "text": "and now? [[sandbox:tool]]"
                              if turn == 0 else "thanks [[sandbox:tokens=20]]"}]}]
        else:
            assert final.stop_reason == "end_turn" and final.content[0].type == "text"
    assert all(r.endpoint == "messages" and r.stream and r.status == 200 for r in records)
    assert records[0].cached_tokens == 0
    later = records[1]
    assert later.cached_tokens > 1000  # the long system prompt and tools, read from cache
    entry = gw.app.services.catalog.get("deepseek", "deepseek-chat")
    assert entry is not None
    at = datetime.fromtimestamp(later.ts, UTC)
    usage = Usage(later.input_tokens, later.cached_tokens, 0, later.output_tokens, 0)
    uncached = Usage(later.input_tokens, 0, 0, later.output_tokens, 0)
    assert later.cost == cost_of(usage, entry, at).amount
    assert later.cost < cost_of(uncached, entry, at).amount


def test_effort_goes_only_where_the_vendor_reads_it(gw: ServerThread) -> None:
    from kanjia.server._messages_http import reasoning_check
    from kanjia.server._responses_http import hints_for

    directory = gw.app.services.directory
    check, hints = reasoning_check(directory), hints_for(directory)
    assert check("openai/o4-mini") and hints("openai/o4-mini").reasoning
    assert hints("openai/gpt-4o-mini").completion_tokens
    for model in ("openai/gpt-4o-mini", "deepseek/deepseek-reasoner", "cheap-chat",
                  "anthropic/claude-sonnet-4-20250514", "nobody/none"):
        assert not check(model) and not hints(model).reasoning, model
    assert not hints("deepseek/deepseek-chat").completion_tokens


def test_reasoning_comes_back_as_thinking(client: anthropic.Anthropic) -> None:
    """A reasoning model's reasoning_content is a thinking block (thinking_delta when
    streamed); sending the block back next turn is accepted (and dropped)."""
    model, prompt = "deepseek/deepseek-reasoner", "why? [[sandbox:tokens=10]]"
    msg = client.messages.create(model=model, max_tokens=500,
                                 messages=[{"role": "user", "content": prompt}])
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].thinking  # type: ignore[union-attr]
    with client.messages.stream(model=model, max_tokens=500,
                                messages=[{"role": "user", "content": prompt}]) as stream:
        deltas = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert deltas[0] == "thinking_delta" and "text_delta" in deltas
    assert final.content[0].type == "thinking"
    again = client.messages.create(model=model, max_tokens=500, messages=[
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
        {"role": "user", "content": "and? [[sandbox:tokens=5]]"}])
    assert again.stop_reason == "end_turn"


def test_count_tokens_ignores_what_does_not_change_the_count() -> None:
    """Sampling parameters and other fields count_tokens does not take are ignored (a
    schema-valid body with an odd ``temperature`` once made it a 400)."""
    from kanjia.ingress import count_input

    body = {"model": "deepseek/deepseek-chat", "temperature": [[None, 42744, -4959]],
            "stream": "yes", "messages": [{"role": "user", "content": "hi"}]}
    chat = count_input(body)
    assert chat["messages"] == [{"role": "user", "content": "hi"}]
    assert "temperature" not in chat and "stream" not in chat
