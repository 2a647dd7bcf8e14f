"""The translators on their own: every field of both APIs to the internal chat form, and
chat results and chunks back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from kanjia.errors import (
    AuthFailed,
    BadRequest,
    BalanceExhausted,
    BudgetExceeded,
    KanjiaError,
    ModelNotFound,
    NoDeploymentAvailable,
    Overloaded,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    UpstreamProtocolError,
    UpstreamTimeout,
    VendorAuthFailed,
)
from kanjia.ingress import (
    MessagesStream,
    ModelHints,
    ResponsesStream,
    ResponseStore,
    SQLiteResponseStore,
    chat_to_message,
    chat_to_response,
    messages_to_chat,
    owner_of,
    responses_to_chat,
)

M = "deepseek/deepseek-chat"


def _msg(**kw: Any) -> dict[str, Any]:
    return {"model": M, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}],
            **kw}


def test_messages_system_and_sampling_fields() -> None:
    req = messages_to_chat(_msg(
        system=[{"type": "text", "text": "A"},
                {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}}],
        temperature=0.2, top_p=0.9, top_k=5, stop_sequences=["END"],
        metadata={"user_id": "u1"}))
    chat = req.chat
    assert chat["messages"][0] == {"role": "system", "content": [
        {"type": "text", "text": "A"},
        {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}}]}
    plain = messages_to_chat(_msg(system=[{"type": "text", "text": "A"},
                                          {"type": "text", "text": "B"}])).chat
    assert plain["messages"][0] == {"role": "system", "content": "A\n\nB"}
    assert chat["temperature"] == 0.2 and chat["top_p"] == 0.9 and "top_k" not in chat
    assert chat["stop"] == ["END"] and chat["user"] == "u1" and chat["max_tokens"] == 100
    assert "stream" not in chat and not req.stream


def test_messages_content_blocks() -> None:
    messages = [
        {"role": "system", "content": "inline system"},
        {"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "AAAA"}},
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "calling"},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
            {"type": "tool_use", "id": "toolu_2", "name": "g", "input": {}}]},
        {"role": "user", "content": [
            {"type": "text", "text": "after"},
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
             "content": [{"type": "text", "text": "boom"}]}]},
    ]
    chat = messages_to_chat(_msg(messages=messages)).chat
    out = chat["messages"]
    assert out[0] == {"role": "system", "content": "inline system"}
    assert out[1]["content"][1] == {"type": "image_url",
                                    "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert out[1]["content"][2]["image_url"]["url"] == "https://x/y.png"
    assert out[2]["content"] == "calling" and "reasoning_content" not in out[2]
    assert [c["function"]["name"] for c in out[2]["tool_calls"]] == ["f", "g"]
    assert json.loads(out[2]["tool_calls"][0]["function"]["arguments"]) == {"a": 1}
    # tool messages come straight after the assistant's calls, the text after them
    assert out[3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "ok"}
    assert out[4] == {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: boom"}
    assert out[5] == {"role": "user", "content": "after"}


def test_cache_marks_carry_into_the_chat_form() -> None:
    cc = {"type": "ephemeral"}
    hour = {"type": "ephemeral", "ttl": "1h"}
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "q", "cache_control": cc}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "t"},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {}, "cache_control": cc}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                      "content": "r", "cache_control": hour}]}]
    tools = [{"name": "f", "input_schema": {"type": "object"}, "cache_control": hour}]
    chat = messages_to_chat(_msg(messages=messages, tools=tools)).chat
    out = chat["messages"]
    assert out[0]["content"] == [{"type": "text", "text": "q", "cache_control": cc}]
    assert out[1]["content"] == "t" and out[1]["cache_control"] == cc
    assert out[2] == {"role": "tool", "tool_call_id": "t1", "content": "r",
                      "cache_control": hour}
    assert chat["tools"][0]["cache_control"] == hour


def test_tool_result_images_follow_as_a_user_message() -> None:
    messages = [
        {"role": "user", "content": "shoot"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "screen",
                                           "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
            {"type": "text", "text": "done"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "QQ"}}]}]}]
    out = messages_to_chat(_msg(messages=messages)).chat["messages"]
    assert out[2] == {"role": "tool", "tool_call_id": "t1", "content": "done"}
    assert out[3] == {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,QQ"}}]}


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
])
def test_messages_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    chat = messages_to_chat(_msg(tools=tools, tool_choice=choice)).chat
    assert chat["tool_choice"] == expected
    assert chat["tools"] == [{"type": "function",
                              "function": {"name": "f", "parameters": {"type": "object"}}}]


def test_messages_server_tools_dropped_and_parallel() -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}},
             {"type": "web_search_20250305", "name": "web_search"},
             {"type": "bash_20250124", "name": "bash"}]
    req = messages_to_chat(_msg(tools=tools, tool_choice={
        "type": "auto", "disable_parallel_tool_use": True}))
    assert req.dropped_tools == ["web_search", "bash"]
    assert [t["function"]["name"] for t in req.chat["tools"]] == ["f"]
    assert req.chat["parallel_tool_calls"] is False
    with pytest.raises(BadRequest, match="web_search"):
        messages_to_chat(_msg(tools=tools, tool_choice={"type": "tool",
                                                        "name": "web_search"}))


@pytest.mark.parametrize(("extra", "effort"), [
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "low"),
    ({"thinking": {"type": "enabled", "budget_tokens": 8000}}, "medium"),
    ({"thinking": {"type": "enabled", "budget_tokens": 32000}}, "high"),
    ({"thinking": {"type": "adaptive"}}, None),
    ({"thinking": {"type": "disabled"}}, None),
    ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}}, "high"),
    ({"output_config": {"effort": "low"}}, "low"),
])
def test_messages_thinking_to_effort(extra: dict[str, Any], effort: str | None) -> None:
    chat = messages_to_chat(_msg(**extra), lambda _m: True).chat
    assert chat.get("reasoning_effort") == effort
    assert "reasoning_effort" not in messages_to_chat(_msg(**extra), lambda _m: False).chat


def test_messages_server_blocks_documents_and_formats() -> None:
    messages = [
        {"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                            "data": "doc body"}},
            {"type": "search_result", "source": "https://x", "title": "T",
             "content": [{"type": "text", "text": "found"}]}]},
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}},
            {"type": "web_search_tool_result", "tool_use_id": "srv_1", "content": []},
            {"type": "text", "text": "answer"}]},
        {"role": "user", "content": "next"}]
    chat = messages_to_chat(_msg(messages=messages, output_config={
        "format": {"type": "json_schema", "schema": {"type": "object"}}})).chat
    assert chat["messages"][0]["content"] == "doc body\n\nT https://x\nfound"
    assert chat["messages"][1] == {"role": "assistant", "content": "answer"}
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "output", "schema": {"type": "object"}}}
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                          "data": "JVBE"}}
    with pytest.raises(BadRequest, match="plain-text documents"):
        messages_to_chat(_msg(messages=[{"role": "user", "content": [pdf]}]))
    with pytest.raises(BadRequest, match="mcp_servers"):
        messages_to_chat(_msg(mcp_servers=[{"type": "url", "url": "https://m", "name": "m"}]))


def test_messages_stream_asks_for_usage() -> None:
    chat = messages_to_chat(_msg(stream=True)).chat
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(("body", "field"), [
    ({"model": M, "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    (_msg(model=""), "model"),
    (_msg(messages=[]), "messages"),
    (_msg(messages=[{"role": "user", "content": 5}]), "messages.0.content"),
    (_msg(messages=[{"role": "user", "content": [{"type": "video"}]}]), "messages.0.content.0"),
    (_msg(messages=[{"role": "user", "content": [{"type": "image", "source": {}}]}]),
     "source.type"),
    (_msg(stop_sequences="END"), "stop_sequences"),
    (_msg(metadata={"user_id": 5}), "metadata.user_id"),
    (_msg(thinking={"type": "enabled"}), "thinking.budget_tokens"),
    (_msg(output_config={"effort": "huge"}), "output_config.effort"),
    (_msg(tools=[{"name": "f"}]), "tools.0.input_schema"),
    (_msg(stream="yes"), "stream"),
    (_msg(system=5), "system"),
])
def test_messages_bad_fields_are_named(body: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest, match=field.replace(".", r"\.")):
        messages_to_chat(body)


def test_chat_to_message() -> None:
    chat = {"choices": [{"finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "x", "reasoning_content": "because",
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "f", "arguments": "{\"a\": 2}"}}]}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 7,
                  "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 10},
                  "cost": "0.0012", "cost_currency": "USD"}}
    msg = chat_to_message(chat, M, "msg_1")
    assert [b["type"] for b in msg["content"]] == ["thinking", "text", "tool_use"]
    assert msg["content"][2] == {"type": "tool_use", "id": "call_1", "name": "f",
                                 "input": {"a": 2}}
    assert msg["stop_reason"] == "tool_use" and msg["stop_sequence"] is None
    assert msg["usage"] == {"input_tokens": 30, "cache_read_input_tokens": 60,
                            "cache_creation_input_tokens": 10, "output_tokens": 7,
                            "cost": "0.0012", "cost_currency": "USD"}


@pytest.mark.parametrize(("finish", "stop"), [("stop", "end_turn"), ("length", "max_tokens"),
                                              ("tool_calls", "tool_use"),
                                              ("content_filter", "refusal"), (None, "end_turn")])
def test_stop_reasons(finish: str | None, stop: str) -> None:
    chat = {"choices": [{"finish_reason": finish, "message": {"content": "x"}}]}
    assert chat_to_message(chat, M, "msg_1")["stop_reason"] == stop


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
           usage: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"choices": [] if delta is None else
                            [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        body["usage"] = usage
    return orjson.dumps(body)


def _anthropic_events(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in data.split(b"\n") if line.startswith(b"data: ")]


def test_messages_stream_blocks() -> None:
    s = MessagesStream("msg_1", M)
    data = s.start() + s.feed([
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"reasoning_content": "think"}), _chunk({"content": "Hel"}),
        _chunk({"content": "lo"}),
        _chunk({"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                                "function": {"name": "f", "arguments": ""}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\""}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        _chunk({"tool_calls": [{"index": 1, "id": "c2", "type": "function",
                                "function": {"name": "g", "arguments": "{}"}}]}),
        _chunk({}, "tool_calls"),
        _chunk(None, usage={"prompt_tokens": 9, "completion_tokens": 4}),
    ]) + s.finish()
    events = _anthropic_events(data)
    assert [e["type"] for e in events] == [
        "message_start", "ping",
        "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop"]
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [e["index"] for e in starts] == [0, 1, 2, 3]
    assert [e["content_block"]["type"] for e in starts] == ["thinking", "text", "tool_use",
                                                           "tool_use"]
    deltas = [e["delta"]["type"] for e in events if e["type"] == "content_block_delta"]
    assert deltas == ["thinking_delta", "text_delta", "text_delta", "input_json_delta",
                      "input_json_delta", "input_json_delta"]
    final = events[-2]
    assert final["delta"]["stop_reason"] == "tool_use"
    assert final["usage"]["input_tokens"] == 9 and final["usage"]["output_tokens"] == 4


def test_messages_stream_error_ends_without_message_stop() -> None:
    s = MessagesStream("msg_1", M)
    data = s.start() + s.feed([_chunk({"content": "par"}), orjson.dumps(
        {"error": {"message": "vendor reset", "type": "api_error", "code": "timeout"}})])
    data += s.finish()
    events = _anthropic_events(data)
    assert events[-1] == {"type": "error", "error": {"type": "timeout_error",
                                                     "message": "vendor reset"}}
    assert not any(e["type"] == "message_stop" for e in events)


def _resp(**kw: Any) -> dict[str, Any]:
    return {"model": M, "input": "hi", **kw}


def test_responses_input_items_and_history() -> None:
    history = [{"role": "user", "content": "before"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_old", "type": "function",
                    "function": {"name": "f", "arguments": "{}"}}]}]
    req = responses_to_chat(_resp(instructions="be kind", input=[
        {"type": "function_call_output", "call_id": "call_old", "output": "42"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "so"}]},
        {"type": "function_call", "call_id": "call_new", "name": "g", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_new",
         "output": [{"type": "input_text", "text": "ok"}]},
        {"role": "user", "content": [
            {"type": "input_text", "text": "see"},
            {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"}]},
    ]), history)
    msgs = req.chat["messages"]
    assert msgs[0] == {"role": "system", "content": "be kind"}
    assert msgs[1:3] == history
    assert msgs[3] == {"role": "tool", "tool_call_id": "call_old", "content": "42"}
    assert msgs[4]["content"] == "so" and msgs[4]["tool_calls"][0]["id"] == "call_new"
    assert msgs[5] == {"role": "tool", "tool_call_id": "call_new", "content": "ok"}
    assert msgs[6]["content"][1] == {"type": "image_url", "image_url": {
        "url": "data:image/png;base64,AA", "detail": "low"}}
    # the stored conversation leaves the instructions out (they do not carry over)
    assert req.history == msgs[1:]
    assert [i["type"] for i in req.input_items] == [
        "function_call_output", "reasoning", "message", "function_call",
        "function_call_output", "message"]
    assert all(i["id"] for i in req.input_items)


def test_function_output_images_follow_the_tool_messages() -> None:
    history = [{"role": "assistant", "content": None, "tool_calls": [
        {"id": c, "type": "function", "function": {"name": "f", "arguments": "{}"}}
        for c in ("c1", "c2")]}]
    req = responses_to_chat(_resp(input=[
        {"type": "function_call_output", "call_id": "c1", "output": [
            {"type": "input_image", "image_url": "https://x/a.png"}]},
        {"type": "function_call_output", "call_id": "c2", "output": "two"}]), history)
    msgs = req.chat["messages"][1:]
    assert [m["role"] for m in msgs] == ["tool", "tool", "user"]
    assert msgs[2]["content"] == [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]


def test_custom_tools_are_functions_of_one_string() -> None:
    patch = {"type": "custom", "name": "apply_patch", "description": "Patch files.",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}
    req = responses_to_chat(_resp(tools=[patch], tool_choice={"type": "custom",
                                                              "name": "apply_patch"}, input=[
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch",
         "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done"}]), [])
    fn = req.chat["tools"][0]["function"]
    assert fn["name"] == "apply_patch" and fn["parameters"]["required"] == ["input"]
    assert req.chat["tool_choice"] == {"type": "function", "function": {"name": "apply_patch"}}
    call = req.chat["messages"][0]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"input": "*** Begin Patch"}
    assert req.chat["messages"][1] == {"role": "tool", "tool_call_id": "c1", "content": "Done"}
    assert req.dropped_tools == [] and req.custom == {"apply_patch"}
    chat = {"choices": [{"finish_reason": "tool_calls", "message": {"tool_calls": [
        {"id": "c2", "function": {"name": "apply_patch",
                                  "arguments": json.dumps({"input": "*** End Patch"})}}]}}]}
    item = chat_to_response(chat, req, "resp_1")["output"][0]
    assert item["type"] == "custom_tool_call" and item["input"] == "*** End Patch"
    assert item["call_id"] == "c2" and item["name"] == "apply_patch"
    s = ResponsesStream("resp_1", req)
    args = json.dumps({"input": "line1\nline2"})
    data = s.start() + s.feed([
        _chunk({"tool_calls": [{"index": 0, "id": "c3", "function": {
            "name": "apply_patch", "arguments": args[:7]}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[7:]}}]}),
        _chunk({}, "tool_calls")]) + s.finish()
    events = _anthropic_events(data)
    kinds = [e["type"] for e in events]
    assert "response.function_call_arguments.delta" not in kinds
    done = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    assert done["input"] == "line1\nline2"
    assert events[-1]["response"]["output"][0]["input"] == "line1\nline2"


def test_hosted_call_items_in_history_are_dropped() -> None:
    req = responses_to_chat(_resp(input=[
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"role": "user", "content": "and?"}]), [])
    assert req.chat["messages"] == [{"role": "user", "content": "and?"}]


def test_responses_fields() -> None:
    req = responses_to_chat(_resp(
        max_output_tokens=50, temperature=0.1, top_p=0.5, parallel_tool_calls=False,
        tools=[{"type": "function", "name": "f", "parameters": {"type": "object"},
                "strict": True}, {"type": "web_search"}, {"type": "image_generation"}],
        tool_choice="required", reasoning={"effort": "high"}, user="u",
        text={"format": {"type": "json_schema", "name": "r", "schema": {"type": "object"},
                         "strict": True}}, stream=True, store=False),
        [], lambda _m: ModelHints(reasoning=True, completion_tokens=True))
    chat = req.chat
    assert chat["max_completion_tokens"] == 50 and "max_tokens" not in chat
    assert chat["temperature"] == 0.1 and chat["top_p"] == 0.5
    assert chat["parallel_tool_calls"] is False and chat["tool_choice"] == "required"
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object"}, "strict": True}}]
    assert req.dropped_tools == ["web_search", "image_generation"]
    assert chat["reasoning_effort"] == "high" and chat["user"] == "u"
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "r", "schema": {"type": "object"}, "strict": True}}
    assert chat["stream_options"] == {"include_usage": True}
    assert req.store is False and req.stream
    plain = responses_to_chat(_resp(max_output_tokens=50, reasoning={"effort": "high"},
                                    text={"format": {"type": "json_object"}}), [])
    assert plain.chat["max_tokens"] == 50 and "reasoning_effort" not in plain.chat
    assert plain.chat["response_format"] == {"type": "json_object"} and plain.store


def test_chat_to_response() -> None:
    req = responses_to_chat(_resp(), [])
    chat = {"choices": [{"finish_reason": "tool_calls", "message": {
        "content": "x", "reasoning_content": "r", "tool_calls": [
            {"id": "call_1", "function": {"name": "f", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                  "prompt_tokens_details": {"cached_tokens": 4},
                  "completion_tokens_details": {"reasoning_tokens": 2},
                  "cost": "0.1", "cost_currency": "CNY"}}
    resp = chat_to_response(chat, req, "resp_1")
    assert [o["type"] for o in resp["output"]] == ["reasoning", "message", "function_call"]
    assert resp["output"][2]["call_id"] == "call_1" and resp["status"] == "completed"
    assert resp["usage"] == {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
                             "output_tokens": 5,
                             "output_tokens_details": {"reasoning_tokens": 2},
                             "total_tokens": 15, "cost": "0.1", "cost_currency": "CNY"}


def test_responses_stream_sequence() -> None:
    req = responses_to_chat(_resp(stream=True), [])
    s = ResponsesStream("resp_1", req)
    data = s.start() + s.feed([
        _chunk({"reasoning_content": "r"}), _chunk({"content": "a"}), _chunk({"content": "b"}),
        _chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f",
                                                                     "arguments": "{}"}}]}),
        _chunk({}, "tool_calls"), _chunk(None, usage={"prompt_tokens": 3,
                                                      "completion_tokens": 2})]) + s.finish()
    events = _anthropic_events(data)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_text.delta",
        "response.reasoning_text.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    done = events[-1]["response"]
    assert done["output"][1]["content"][0]["text"] == "ab" and done["usage"]["total_tokens"] == 5
    assert s.completed and s.response["status"] == "completed"


@pytest.mark.parametrize(("body", "field"), [
    (_resp(model=None), "model"), (_resp(input=None), "input"), (_resp(input=[]), "input"),
    (_resp(input=[{"type": "item_reference", "id": "x"}]), "input[0].type"),
    (_resp(input=[{"type": "function_call", "name": "f"}]), "call_id"),
    (_resp(input=[{"role": "user", "content": [{"type": "input_file"}]}]),
     "input[0].content[0].type"),
    (_resp(tools=[{"name": "f"}]), "tools[0].type"),
    (_resp(tool_choice="sometimes"), "tool_choice"),
    (_resp(tool_choice={"type": "file_search"}), "file_search"),
    (_resp(text={"format": {"type": "json_schema"}}), "text.format"),
    (_resp(instructions=5), "instructions"), (_resp(store="yes"), "store"),
    (_resp(conversation="conv_1"), "conversation"),
])
def test_responses_bad_fields_are_named(body: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest, match=field.replace("[", r"\[").replace("]", r"\]")
                       .replace(".", r"\.")):
        responses_to_chat(body, [])


async def test_store_bounds_and_owners() -> None:
    store = ResponseStore(max_items=2, max_bytes=10_000)
    a, b = owner_of("key-a"), owner_of("key-b")
    for i in range(3):
        await store.put(a, {"id": f"resp_{i}"}, [], [])
    assert len(store) == 2 and await store.get(a, "resp_0") is None
    assert await store.get(b, "resp_2") is None and await store.get(a, "resp_2") is not None
    assert not await store.delete(b, "resp_2") and await store.delete(a, "resp_2")
    await store.put(a, {"id": "big", "x": "y" * 6000}, [], [])
    await store.put(a, {"id": "big2", "x": "y" * 6000}, [], [])
    assert await store.get(a, "big") is None and await store.get(a, "big2") is not None
    await store.put(a, {"id": "huge", "x": "y" * 20_000}, [], [])
    assert await store.get(a, "huge") is None
    assert "key-a" not in repr(store._items)


async def test_sqlite_store_is_shared_and_expires(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.db.responses")
    a, b = owner_of("key-a"), owner_of("key-b")
    one, two = SQLiteResponseStore(path), SQLiteResponseStore(path)  # two workers
    try:
        history = [{"role": "user", "content": "hi"}]
        await one.put(a, {"id": "resp_1", "output": []}, history, [{"id": "msg_1"}])
        got = await two.get(a, "resp_1")
        assert got is not None and got.history == history and got.input_items == [
            {"id": "msg_1"}]
        assert await two.get(b, "resp_1") is None
        assert not await two.delete(b, "resp_1") and await two.delete(a, "resp_1")
        assert await one.get(a, "resp_1") is None
    finally:
        await one.close()
        await two.close()
    old = SQLiteResponseStore(path, ttl_s=-1.0)
    try:
        await old.put(a, {"id": "resp_2"}, [], [])
        assert await old.get(a, "resp_2") is None  # older than its time to live
    finally:
        await old.close()
    assert b"key-a" not in Path(path).read_bytes()


@pytest.mark.parametrize(("exc", "status", "kind"), [
    (BadRequest("x"), 400, "invalid_request_error"),
    (AuthFailed("x"), 401, "authentication_error"),
    (PermissionDenied("x"), 403, "permission_error"),
    (ModelNotFound("x"), 404, "not_found_error"),
    (PayloadTooLarge("x"), 413, "request_too_large"),
    (BudgetExceeded("x"), 429, "rate_limit_error"),
    (RateLimited("x"), 429, "rate_limit_error"),
    (Overloaded("x"), 529, "overloaded_error"),
    (NoDeploymentAvailable("x"), 529, "overloaded_error"),
    (UpstreamTimeout("x"), 504, "timeout_error"),
    (UpstreamProtocolError("x"), 502, "api_error"),
    (VendorAuthFailed("x"), 502, "api_error"),
    (BalanceExhausted("x"), 502, "api_error"),
    (KanjiaError("x"), 500, "api_error"),
])
def test_anthropic_error_shapes(exc: KanjiaError, status: int, kind: str) -> None:
    got_status, body = exc.anthropic()
    assert got_status == status
    assert body == {"type": "error", "error": {"type": kind, "message": "x"}}
