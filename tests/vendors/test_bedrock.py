"""AWS Bedrock: Converse translation, SigV4 by botocore checked by the sandbox's own
verifier, event-stream decoding by botocore of the sandbox's own framing, errors."""

from __future__ import annotations

import builtins
import json
import uuid
from typing import Any

import openai
import orjson
import pytest
from aiohttp.test_utils import make_mocked_request

from kanjia import errors as e
from kanjia.catalog import Usage, load_catalog
from kanjia.config import load_settings
from kanjia.routing.directory import ModelDirectory
from kanjia.sandbox._vendors.bedrock_eventstream import event_frame, exception_frame, frame
from kanjia.sandbox._vendors.bedrock_sigv4 import SIGV4_SECRET, check_sigv4
from kanjia.vendors import Deployment, adapter_for, load_vendor_specs
from kanjia.vendors._converse import converse_body, converse_usage
from kanjia.vendors.bedrock import BedrockAdapter

SPECS = load_vendor_specs()
BEDROCK = SPECS["bedrock"]
BASE = "https://bedrock-runtime.eu-west-1.amazonaws.com"
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


def _dep(secret: str = SIGV4_SECRET, token: str | None = None) -> Deployment:
    secrets = {"secret_access_key": secret} | ({"session_token": token} if token else {})
    return Deployment(BEDROCK, BASE, "AKIDSANDBOX", secrets=secrets, region="eu-west-1")


def _adapter() -> BedrockAdapter:
    adapter = adapter_for(BEDROCK)
    assert isinstance(adapter, BedrockAdapter)
    return adapter


def _mocked(url: str, headers: dict[str, str]) -> Any:
    path = url.split("amazonaws.com", 1)[1]
    return make_mocked_request("POST", path, headers={
        **headers, "Host": "bedrock-runtime.eu-west-1.amazonaws.com"})


def test_request_is_signed_by_botocore_and_verifies_independently() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 9}
    req = _adapter().chat_request(_dep(token="tok"), body, MODEL, stream=True)
    assert req.url == f"{BASE}/model/{MODEL}/converse-stream"
    assert req.headers["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDSANDBOX/")
    assert "/eu-west-1/bedrock/aws4_request" in req.headers["Authorization"]
    assert req.headers["X-Amz-Security-Token"] == "tok"
    assert req.headers["Accept"] == "application/vnd.amazon.eventstream"
    assert check_sigv4(_mocked(req.url, dict(req.headers)), req.body, "bedrock") is None
    # the sandbox's verifier is not a rubber stamp: a wrong secret or a changed body fails
    bad = _adapter().chat_request(_dep(secret="not-the-secret"), body, MODEL, stream=False)
    refused = check_sigv4(_mocked(bad.url, dict(bad.headers)), bad.body, "bedrock")
    assert refused is not None and refused[0] == "InvalidSignatureException"
    refused = check_sigv4(_mocked(req.url, dict(req.headers)), req.body + b" ", "bedrock")
    assert refused is not None and refused[0] == "InvalidSignatureException"


def test_inference_profile_arns_are_escaped() -> None:
    arn = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-lite-v1:0"
    req = _adapter().chat_request(_dep(), {"messages": []}, arn, stream=False)
    assert req.url.endswith("/model/arn:aws:bedrock:eu-west-1:123456789012:inference-profile"
                            "%2Feu.amazon.nova-lite-v1:0/converse")


def test_access_key_without_secret_is_an_auth_failure() -> None:
    dep = Deployment(BEDROCK, BASE, "AKIDSANDBOX", region="eu-west-1")
    with pytest.raises(e.VendorAuthFailed, match="AWS_SECRET_ACCESS_KEY"):
        _adapter().chat_request(dep, {"messages": []}, MODEL, stream=False)


def test_missing_botocore_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = builtins.__import__

    def no_botocore(name: str, *args: Any, **kw: Any) -> Any:
        if name.startswith("botocore"):
            raise ImportError(name)
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_botocore)
    with pytest.raises(e.VendorAuthFailed, match=r"pip install 'kanjia\[bedrock\]'"):
        _adapter().chat_request(_dep(), {"messages": []}, MODEL, stream=False)


def test_converse_body_translates_tools_system_and_turns() -> None:
    body = converse_body({
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "weather?"},
                                         {"type": "image_url", "image_url": {
                                             "url": "data:image/png;base64,iVBORw0KGgo="}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Hangzhou"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": "windy"}],
        "tools": [{"type": "function", "function": {"name": "get_weather",
                                                    "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "max_completion_tokens": 50, "temperature": 0.2, "top_p": 0.9, "stop": "END"})
    assert body["system"] == [{"text": "be brief"}]
    user, assistant, results = body["messages"]
    assert user["content"][1] == {"image": {"format": "png",
                                            "source": {"bytes": "iVBORw0KGgo="}}}
    assert assistant["content"] == [{"toolUse": {"toolUseId": "call_1", "name": "get_weather",
                                                 "input": {"city": "Hangzhou"}}}]
    # consecutive tool results merge into one user turn (Converse alternates roles)
    assert [b["toolResult"]["toolUseId"] for b in results["content"]] == ["call_1", "call_2"]
    assert body["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.2, "topP": 0.9,
                                       "stopSequences": ["END"]}
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "get_weather"}}
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {
        "json": {"type": "object"}}
    with pytest.raises(e.BadRequest):
        converse_body({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]})


def test_usage_counts_the_cache_into_the_prompt() -> None:
    usage = converse_usage({"inputTokens": 100, "outputTokens": 7, "totalTokens": 907,
                            "cacheReadInputTokens": 600, "cacheWriteInputTokens": 200})
    assert usage == Usage(input_tokens=900, cached_tokens=600, cache_write_tokens=200,
                          output_tokens=7, reasoning_tokens=0)
    assert converse_usage({"inputTokens": -1, "outputTokens": 2}) is None
    assert converse_usage({"metrics": {}}) is None


def test_parse_chat_maps_stop_reason_tool_use_and_usage() -> None:
    data = orjson.dumps({"output": {"message": {"role": "assistant", "content": [
        {"reasoningContent": {"reasoningText": {"text": "hmm"}}},
        {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": 1}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 5, "outputTokens": 3}})
    result = _adapter().parse_chat(data, MODEL)
    body = json.loads(result.body)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "f",
                                                              "arguments": '{"a":1}'}
    assert choice["message"]["reasoning_content"] == "hmm"
    assert result.usage is not None and result.usage.input_tokens == 5
    assert body["usage"]["prompt_tokens"] == 5
    guard = orjson.dumps({"output": {"message": {"content": [{"text": "x"}]}},
                          "stopReason": "guardrail_intervened"})
    assert json.loads(_adapter().parse_chat(guard, MODEL).body)["choices"][0][
        "finish_reason"] == "content_filter"
    with pytest.raises(e.UpstreamProtocolError):
        _adapter().parse_chat(b'{"output": {}}', MODEL)


def _events(*frames: bytes) -> list[tuple[str | None, bytes]]:
    decoder = _adapter().stream_decoder()
    raw = b"".join(frames)
    out = []
    for i in range(len(raw)):  # one byte at a time: frames split across reads
        out.extend(decoder.feed(raw[i:i + 1]))
    return out


def _ev(kind: str, payload: dict[str, Any]) -> bytes:
    return event_frame(kind, orjson.dumps({**payload, "p": "abc"}))


def test_stream_decodes_sandbox_framing_into_openai_chunks() -> None:
    events = _events(
        _ev("messageStart", {"role": "assistant"}),
        _ev("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        _ev("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "lo"}}),
        _ev("contentBlockStop", {"contentBlockIndex": 0}),
        _ev("contentBlockStart", {"contentBlockIndex": 1, "start": {
            "toolUse": {"toolUseId": "t1", "name": "f"}}}),
        _ev("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{}"}}}),
        _ev("messageStop", {"stopReason": "max_tokens"}),
        _ev("metadata", {"usage": {"inputTokens": 11, "outputTokens": 4,
                                   "cacheReadInputTokens": 3}, "metrics": {"latencyMs": 9}}))
    assert [ev for ev, _ in events][:2] == ["messageStart", "contentBlockDelta"]
    translator = _adapter().stream_translator(MODEL, include_usage=True)
    chunks = [json.loads(c) for ev, data in events for c in translator.feed(ev, data)]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello"
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
             if c["choices"] and c["choices"][0]["delta"].get("tool_calls")]
    assert calls[0]["function"]["name"] == "f" and calls[1]["function"]["arguments"] == "{}"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"
    assert translator.done
    assert translator.usage == Usage(input_tokens=14, cached_tokens=3, cache_write_tokens=0,
                                     output_tokens=4, reasoning_tokens=0)
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 3}


@pytest.mark.parametrize(("name", "cls"), [
    ("throttlingException", e.RateLimited),
    ("serviceUnavailableException", e.Overloaded),
    ("modelStreamErrorException", e.UpstreamError),
    ("validationException", e.BadRequest),
])
def test_stream_exceptions_raise_their_class(name: str, cls: type[e.KanjiaError]) -> None:
    events = _events(_ev("messageStart", {"role": "assistant"}),
                     exception_frame(name, b'{"message": "went wrong"}'))
    translator = _adapter().stream_translator(MODEL, include_usage=False)
    translator.feed(*events[0])
    with pytest.raises(cls) as info:
        translator.feed(*events[1])
    assert type(info.value) is cls and "went wrong" in info.value.message
    assert not translator.done


def test_broken_frames_are_protocol_errors() -> None:
    good = _ev("messageStart", {"role": "assistant"})
    with pytest.raises(e.UpstreamProtocolError, match="event-stream"):
        _events(good[:-1] + bytes([good[-1] ^ 1]))
    decoder = _adapter().stream_decoder()
    assert decoder.feed(frame({":event-type": "x"}, b"{}")[:10]) == []  # incomplete: wait
    assert decoder.flush() == []


@pytest.mark.parametrize(("status", "kind", "message", "cls"), [
    (429, "ThrottlingException", "Too many requests", e.RateLimited),
    (400, "ValidationException", "Input is too long for requested model.", e.ContextTooLong),
    (400, "ValidationException", "messages: roles must alternate", e.BadRequest),
    (403, "AccessDeniedException", "You don't have access to the model", e.VendorAuthFailed),
    (403, "AccessDeniedException", "Model access is denied due to INVALID_PAYMENT_INSTRUMENT:A "
     "valid payment instrument must be provided.", e.BalanceExhausted),
    (408, "ModelTimeoutException", "Model timed out", e.UpstreamTimeout),
    (503, "ServiceUnavailableException", "Bedrock is unable to process your request.",
     e.Overloaded),
    (424, "ModelErrorException", "The model failed", e.UpstreamError),
    (403, "UnrecognizedClientException", "The security token is invalid", e.VendorAuthFailed),
])
def test_errors_by_amzn_error_type(status: int, kind: str, message: str,
                                   cls: type[e.KanjiaError]) -> None:
    headers = {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    err = _adapter().classify_error(status, orjson.dumps({"message": message}), headers)
    assert type(err) is cls
    assert kind in err.message


def _directory(env: dict[str, str], **vendors: Any) -> ModelDirectory:
    return ModelDirectory(load_settings(None, vendors=vendors), load_catalog(), SPECS, env)


def test_directory_region_and_credentials() -> None:
    assert "bedrock" not in _directory({}).enabled_vendors()
    d = _directory({"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "wJalr-secret",
                    "AWS_REGION": "ap-northeast-1"})
    (dep,) = d.deployments["bedrock"]
    assert dep.base_url == "https://bedrock-runtime.ap-northeast-1.amazonaws.com"
    assert dep.region == "ap-northeast-1"
    assert dep.secrets == {"secret_access_key": "wJalr-secret"}
    assert "wJalr-secret" not in repr(dep) and "AKID" not in repr(dep)
    d = _directory({}, bedrock={"enabled": True, "deployments": [
        {"name": "tokyo", "region": "ap-northeast-1"}, {"name": "virginia"}]})
    tokyo, virginia = d.deployments["bedrock"]
    assert tokyo.api_key is None and tokyo.base_url.endswith("ap-northeast-1.amazonaws.com")
    assert virginia.base_url == "https://bedrock-runtime.us-east-1.amazonaws.com"


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}, "required": ["city"]}}}]


def test_tool_round_trip_through_the_gateway(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="bedrock/amazon.nova-lite-v1:0", messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Hangzhou"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 25C"}],
        tools=TOOLS)  # type: ignore[arg-type]
    assert resp.choices[0].message.content
    assert resp.usage is not None and resp.usage.prompt_tokens > 0


def test_stream_without_usage_is_estimated_not_free(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="bedrock/amazon.nova-lite-v1:0", max_tokens=10,
        messages=[{"role": "user", "content": "count me [[sandbox:no_usage]]"}])
    assert raw.headers.get("x-kanjia-usage") == "estimated"


def test_json_mode_and_n() -> None:
    body = converse_body({"messages": [{"role": "user", "content": "x"}],
                          "response_format": {"type": "json_object"}})
    assert body["system"][-1]["text"].startswith("Respond with one valid JSON object")
    with pytest.raises(e.BadRequest, match="n must be 1"):
        converse_body({"messages": [{"role": "user", "content": "x"}], "n": 2})


def test_cache_control_becomes_cache_points() -> None:
    mark = {"type": "ephemeral"}
    body = converse_body({"messages": [
        {"role": "system", "content": [{"type": "text", "text": "long rules",
                                        "cache_control": mark}]},
        {"role": "user", "content": "doc", "cache_control": mark},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "question"}],
        "tools": [{"type": "function", "cache_control": mark,
                   "function": {"name": "f", "parameters": {"type": "object"}}}]})
    point = {"cachePoint": {"type": "default"}}
    assert body["system"] == [{"text": "long rules"}, point]
    assert body["messages"][0]["content"] == [{"text": "doc"}, point]
    assert point not in body["messages"][2]["content"]
    assert body["toolConfig"]["tools"][-1] == point


def test_broken_stream_is_never_a_success(client: openai.OpenAI) -> None:
    # a frame with a bad CRC: an error (before or after the first byte), never a success
    with pytest.raises(openai.APIError, match="event-stream frame"):
        stream = client.chat.completions.create(
            model="bedrock/amazon.nova-lite-v1:0", stream=True,
            messages=[{"role": "user", "content": "hi [[sandbox:fault=malformed]]"}])
        for _ in stream:
            pass


def test_cache_points_are_written_then_read_and_priced(client: openai.OpenAI) -> None:
    # > 1024 tokens, unique to this run (the sandbox's cache lives as long as the session)
    rules = f"Rules {uuid.uuid4()}: " + "answer briefly and cite the price table. " * 200
    messages: Any = [
        {"role": "system", "content": [{"type": "text", "text": rules,
                                        "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "what does deepseek-chat cost?"}]
    model = "bedrock/amazon.nova-lite-v1:0"
    first = client.chat.completions.with_raw_response.create(model=model, messages=messages,
                                                             max_tokens=8)
    second = client.chat.completions.with_raw_response.create(model=model, messages=messages,
                                                              max_tokens=8)
    u1, u2 = first.parse().usage, second.parse().usage
    assert u1 is not None and u2 is not None
    assert u1.prompt_tokens == u2.prompt_tokens > 1024
    details = u1.prompt_tokens_details
    assert details is not None and not details.cached_tokens
    written = getattr(details, "cache_write_tokens", None) or \
        (details.model_extra or {}).get("cache_write_tokens", 0)
    assert written > 1024
    assert u2.prompt_tokens_details is not None
    assert u2.prompt_tokens_details.cached_tokens and u2.prompt_tokens_details.cached_tokens > 1024
    # the read is priced at Nova Lite's cache-read price: the second call costs less
    cost1 = float(first.headers["x-kanjia-cost"].split()[0])
    cost2 = float(second.headers["x-kanjia-cost"].split()[0])
    assert 0 < cost2 < cost1
