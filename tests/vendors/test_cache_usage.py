"""Each vendor's usage and cache fields as the adapters read them, and Anthropic
``cache_control`` as the adapter sends it upstream."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from kanjia.catalog import Usage
from kanjia.errors import BadRequest
from kanjia.vendors import Deployment, adapter_for, load_vendor_specs
from kanjia.vendors._openai_format import usage_from_openai

SPECS = load_vendor_specs()


def _adapter(vendor: str) -> Any:
    return adapter_for(SPECS[vendor])


# -- OpenAI-style usage ------------------------------------------------------------------

@pytest.mark.parametrize(("usage", "expected"), [
    # OpenAI, Qwen, GLM, Doubao, Kimi K2: prompt_tokens_details.cached_tokens
    ({"prompt_tokens": 3019, "completion_tokens": 104, "total_tokens": 3123,
      "prompt_tokens_details": {"cached_tokens": 2048}},
     Usage(3019, 2048, 0, 104, 0)),
    # DeepSeek's own fields, without the details (what genai-prices misses)
    ({"prompt_tokens": 1500, "completion_tokens": 10, "prompt_cache_hit_tokens": 1280,
      "prompt_cache_miss_tokens": 220}, Usage(1500, 1280, 0, 10, 0)),
    # DeepSeek hit/miss win over a details block that disagrees
    ({"prompt_tokens": 1500, "completion_tokens": 10, "prompt_cache_hit_tokens": 1280,
      "prompt_cache_miss_tokens": 220, "prompt_tokens_details": {"cached_tokens": 0}},
     Usage(1500, 1280, 0, 10, 0)),
    # only hit/miss: the prompt is their sum
    ({"completion_tokens": 5, "prompt_cache_hit_tokens": 64, "prompt_cache_miss_tokens": 36},
     Usage(100, 64, 0, 5, 0)),
    # Kimi (moonshot-v1 Context Caching): top-level cached_tokens
    ({"prompt_tokens": 900, "completion_tokens": 20, "total_tokens": 920, "cached_tokens": 800},
     Usage(900, 800, 0, 20, 0)),
    # Qwen explicit cache (cache_control): creation tokens are writes, part of the prompt
    ({"prompt_tokens": 1236, "completion_tokens": 9, "prompt_tokens_details": {
        "cached_tokens": 0, "cache_creation_input_tokens": 1228,
        "cache_creation": {"ephemeral_5m_input_tokens": 1228}, "cache_type": "ephemeral"}},
     Usage(1236, 0, 1228, 9, 0)),
    # OpenRouter: cache_write_tokens in the details
    ({"prompt_tokens": 2000, "completion_tokens": 3, "prompt_tokens_details": {
        "cached_tokens": 500, "cache_write_tokens": 1000}}, Usage(2000, 500, 1000, 3, 0)),
    # reasoning in the completion details; a cached count above the prompt is clamped
    ({"prompt_tokens": 10, "completion_tokens": 50, "prompt_tokens_details": {
        "cached_tokens": 64}, "completion_tokens_details": {"reasoning_tokens": 40}},
     Usage(10, 10, 0, 50, 40)),
])
def test_openai_style_cache_fields(usage: dict[str, Any], expected: Usage) -> None:
    assert usage_from_openai(usage) == expected


@pytest.mark.parametrize("usage", [
    {}, {"total_tokens": 5},
    {"prompt_tokens": "12", "completion_tokens": 3},
    {"prompt_tokens": 12, "completion_tokens": -1},
    {"prompt_tokens": 12, "completion_tokens": True},
    {"prompt_tokens": 12, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": "x"}},
    {"prompt_tokens": 12, "completion_tokens": 3, "prompt_tokens_details": ["cached_tokens"]},
    {"prompt_tokens": 12, "completion_tokens": 3, "prompt_cache_hit_tokens": 1.5},
])
def test_malformed_usage_is_estimated_not_zero(usage: dict[str, Any]) -> None:
    assert usage_from_openai(usage) is None
    body = orjson.dumps({"id": "x", "choices": [{"index": 0, "finish_reason": "stop",
                                                 "message": {"content": "hi there"}}],
                         "usage": usage})
    result = _adapter("deepseek").parse_chat(body, "deepseek-chat")
    assert result.usage is None and result.output_text == "hi there"


# -- Gemini ------------------------------------------------------------------------------

def test_gemini_cached_content() -> None:
    body = orjson.dumps({"candidates": [{"content": {"parts": [{"text": "ok"}]},
                                         "finishReason": "STOP"}],
                         "usageMetadata": {"promptTokenCount": 5000,
                                           "cachedContentTokenCount": 4096,
                                           "candidatesTokenCount": 7, "thoughtsTokenCount": 3,
                                           "totalTokenCount": 5010}})
    result = _adapter("gemini").parse_chat(body, "gemini-2.5-flash")
    assert result.usage == Usage(5000, 4096, 0, 10, 3)
    assert orjson.loads(result.body)["usage"]["prompt_tokens_details"] == {"cached_tokens": 4096}
    bad = body.replace(b'"cachedContentTokenCount":4096', b'"cachedContentTokenCount":"4096"')
    assert _adapter("gemini").parse_chat(bad, "gemini-2.5-flash").usage is None


# -- Anthropic usage -------------------------------------------------------------------

ANTHROPIC_USAGE = {"input_tokens": 21, "cache_creation_input_tokens": 3000,
                   "cache_read_input_tokens": 5000,
                   "cache_creation": {"ephemeral_5m_input_tokens": 1000,
                                      "ephemeral_1h_input_tokens": 2000},
                   "output_tokens": 40, "service_tier": "standard"}


def test_anthropic_body_usage_splits_reads_and_writes_by_ttl() -> None:
    body = orjson.dumps({"id": "msg_1", "type": "message", "role": "assistant",
                         "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                         "usage": ANTHROPIC_USAGE})
    result = _adapter("anthropic").parse_chat(body, "claude-sonnet-4-5")
    # input_tokens excludes the cache: the prompt is 21 + 5000 + 3000
    assert result.usage == Usage(8021, 5000, 3000, 40, 0, 2000)
    details = orjson.loads(result.body)["usage"]["prompt_tokens_details"]
    assert details == {"cached_tokens": 5000, "cache_write_tokens": 3000}


def _stream(*events: dict[str, Any]) -> Any:
    translator = _adapter("anthropic").stream_translator("claude-sonnet-4-5", True)
    for ev in events:
        translator.feed(ev["type"], orjson.dumps(ev))
    return translator


def test_anthropic_stream_usage_from_start_and_delta() -> None:
    start = {"type": "message_start", "message": {
        "id": "msg_1", "model": "claude-sonnet-4-5", "usage": {**ANTHROPIC_USAGE,
                                                                 "output_tokens": 1}}}
    # the classic delta: only output_tokens; the cache counts stay message_start's
    t = _stream(start, {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                        "usage": {"output_tokens": 40}}, {"type": "message_stop"})
    assert t.usage == Usage(8021, 5000, 3000, 40, 0, 2000)
    # today's delta repeats the cumulative counts (nulls keep the start's values)
    t = _stream(start, {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                        "usage": {"input_tokens": 21, "cache_read_input_tokens": 5000,
                                  "cache_creation_input_tokens": None, "output_tokens": 44}},
                {"type": "message_stop"})
    assert t.usage == Usage(8021, 5000, 3000, 44, 0, 2000)
    t = _stream({**start, "message": {**start["message"], "usage": {"input_tokens": "x"}}})
    assert t.usage is None


# -- Anthropic cache_control pass-through ----------------------------------------------

DEP = Deployment(SPECS["anthropic"], "http://upstream", "key")
EPHEMERAL = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}


def _sent(body: dict[str, Any]) -> dict[str, Any]:
    req = _adapter("anthropic").chat_request(DEP, body, "claude-sonnet-4-5", False)
    out: dict[str, Any] = orjson.loads(req.body)
    return out


def test_cache_control_on_system_parts_goes_to_system_blocks() -> None:
    sent = _sent({"messages": [
        {"role": "system", "content": [{"type": "text", "text": "long rules",
                                        "cache_control": HOUR},
                                       {"type": "text", "text": "today's date"}]},
        {"role": "user", "content": "hi"}],
        "response_format": {"type": "json_object"}})
    assert sent["system"][:2] == [
        {"type": "text", "text": "long rules", "cache_control": HOUR},
        {"type": "text", "text": "today's date"}]
    # the JSON instruction goes after the cached prefix, so the cache still hits
    assert "JSON" in sent["system"][2]["text"] and "cache_control" not in sent["system"][2]


def test_system_without_cache_control_stays_a_string() -> None:
    sent = _sent({"messages": [{"role": "system", "content": "be brief"},
                               {"role": "user", "content": "hi"}]})
    assert sent["system"] == "be brief"


def test_cache_control_on_parts_messages_and_tools() -> None:
    sent = _sent({
        "messages": [
            {"role": "system", "content": "rules", "cache_control": EPHEMERAL},
            {"role": "user", "content": [
                {"type": "text", "text": "a document", "cache_control": EPHEMERAL},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"},
                 "cache_control": HOUR},
                {"type": "text", "text": "question"}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "t1", "type": "function",
                 "function": {"name": "lookup", "arguments": "{}"}}],
             "cache_control": EPHEMERAL},
            {"role": "tool", "tool_call_id": "t1", "content": "result",
             "cache_control": EPHEMERAL},
            {"role": "user", "content": "and now?", "cache_control": EPHEMERAL}],
        "tools": [{"type": "function", "cache_control": HOUR,
                   "function": {"name": "lookup", "parameters": {"type": "object"}}},
                  {"type": "function",
                   "function": {"name": "other", "cache_control": EPHEMERAL}}]})
    assert sent["system"] == [{"type": "text", "text": "rules", "cache_control": EPHEMERAL}]
    first, assistant, tool, last = sent["messages"]
    assert [b.get("cache_control") for b in first["content"]] == [EPHEMERAL, HOUR, None]
    assert first["content"][1]["type"] == "image"
    assert assistant["content"][-1]["type"] == "tool_use"
    assert assistant["content"][-1]["cache_control"] == EPHEMERAL
    assert tool["content"][0]["type"] == "tool_result"
    assert tool["content"][0]["cache_control"] == EPHEMERAL
    assert last["content"] == [{"type": "text", "text": "and now?", "cache_control": EPHEMERAL}]
    assert [t.get("cache_control") for t in sent["tools"]] == [HOUR, EPHEMERAL]
    assert "cache_control" not in sent["tools"][1]["input_schema"]


@pytest.mark.parametrize("control", [
    {"type": "persistent"}, "ephemeral", {"type": "ephemeral", "ttl": "2h"},
    {"type": "ephemeral", "ttl": 3600}, {"type": "ephemeral", "scope": "global"}])
def test_bad_cache_control_is_refused(control: Any) -> None:
    with pytest.raises(BadRequest, match="cache_control"):
        _sent({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi", "cache_control": control}]}]})


def test_cache_control_is_removed_for_openai_compatible_vendors() -> None:
    body = {"model": "x", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "rules",
                                        "cache_control": EPHEMERAL}]},
        {"role": "user", "content": "hi", "cache_control": EPHEMERAL}],
        "tools": [{"type": "function", "cache_control": HOUR,
                   "function": {"name": "f", "cache_control": HOUR}}]}
    before = orjson.dumps(body)
    for vendor in ("openai", "deepseek", "qwen", "zhipu", "moonshot", "doubao"):
        dep = Deployment(SPECS[vendor], "http://upstream", "key")
        sent = orjson.loads(_adapter(vendor).chat_request(dep, body, "m", False).body)
        assert b"cache_control" not in orjson.dumps(sent), vendor
        assert sent["messages"][0]["content"] == [{"type": "text", "text": "rules"}]
        assert sent["tools"] == [{"type": "function", "function": {"name": "f"}}]
    assert orjson.dumps(body) == before  # the client's body is left as it came
