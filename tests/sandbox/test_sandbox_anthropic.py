"""Anthropic Messages wire format: bodies, event streams, tool_use, caching."""

from __future__ import annotations

import json

from sandbox_helpers import ANTHROPIC_HEADERS, Client, user

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}


async def test_message_shape(client: Client) -> None:
    reply = await client.messages({**user("hello [[sandbox:tokens=7]]"), "system": "be brief"})
    assert reply.status == 200
    body = reply.json
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["id"].startswith("msg_") and body["model"] == "claude-sonnet-4-5"
    assert body["stop_reason"] == "end_turn" and body["stop_sequence"] is None
    (block,) = body["content"]
    assert block["type"] == "text" and len(block["text"].split()) == 7
    usage = body["usage"]
    assert usage["output_tokens"] == 7 and usage["input_tokens"] > 0
    assert usage["cache_creation_input_tokens"] == 0 and usage["cache_read_input_tokens"] == 0


async def test_max_tokens_caps_only(client: Client) -> None:
    free = (await client.messages({**user("a stable question"), "max_tokens": 4096})).json
    assert 16 <= free["usage"]["output_tokens"] <= 64 and free["stop_reason"] == "end_turn"
    cut = (await client.messages({**user("x [[sandbox:tokens=30]]"), "max_tokens": 10})).json
    assert cut["usage"]["output_tokens"] == 10 and cut["stop_reason"] == "max_tokens"


async def test_stream_events(client: Client) -> None:
    reply = await client.messages({**user("hello [[sandbox:tokens=5]]"), "stream": True})
    names = [name for name, _ in reply.events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert names.count("content_block_delta") == 5
    data = reply.data
    assert all(d["type"] == n for d, n in zip(data, names, strict=True))
    start = data[0]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["input_tokens"] > 0
    deltas = [d["delta"] for d in data if d["type"] == "content_block_delta"]
    assert all(d["type"] == "text_delta" for d in deltas)
    delta = data[-2]
    assert delta["delta"]["stop_reason"] == "end_turn" and delta["usage"]["output_tokens"] == 5


async def test_tool_use(client: Client) -> None:
    body = {**user("weather? [[sandbox:tool]]"), "tools": [WEATHER]}
    message = (await client.messages(body)).json
    assert message["stop_reason"] == "tool_use"
    (block,) = message["content"]
    assert block["type"] == "tool_use" and block["id"].startswith("toolu_")
    assert block["name"] == "get_weather" and block["input"] == {"city": "example"}
    forced = {
        **user("weather?"),
        "tools": [WEATHER],
        "tool_choice": {"type": "tool", "name": "get_weather"},
    }
    assert (await client.messages(forced)).json["stop_reason"] == "tool_use"
    auto = {**user("weather?"), "tools": [WEATHER]}
    assert (await client.messages(auto)).json["stop_reason"] == "end_turn"


async def test_streamed_tool_use(client: Client) -> None:
    body = {**user("weather? [[sandbox:tool]]"), "tools": [WEATHER], "stream": True}
    data = (await client.messages(body)).data
    start = next(d for d in data if d["type"] == "content_block_start")
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["input"] == {}
    parts = [d["delta"] for d in data if d["type"] == "content_block_delta"]
    assert all(p["type"] == "input_json_delta" for p in parts) and len(parts) >= 2
    assert json.loads("".join(p["partial_json"] for p in parts)) == {"city": "example"}
    assert data[-2]["delta"]["stop_reason"] == "tool_use"


async def test_thinking_blocks(client: Client) -> None:
    body = {
        **user("think [[sandbox:tokens=4]]"),
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }
    message = (await client.messages(body)).json
    assert [b["type"] for b in message["content"]] == ["thinking", "text"]
    assert message["content"][0]["signature"]
    data = (await client.messages({**body, "stream": True})).data
    kinds = [d["delta"]["type"] for d in data if d["type"] == "content_block_delta"]
    assert "thinking_delta" in kinds and "signature_delta" in kinds and "text_delta" in kinds


async def test_cache_control_creation_then_read(client: Client) -> None:
    system = [{"type": "text", "text": "policy " * 2000, "cache_control": {"type": "ephemeral"}}]
    first = (await client.messages({**user("q1"), "system": system})).json["usage"]
    assert first["cache_creation_input_tokens"] > 1024 and first["cache_read_input_tokens"] == 0
    second = (await client.messages({**user("q2"), "system": system})).json["usage"]
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation_input_tokens"] == 0
    assert second["input_tokens"] < first["input_tokens"] + first["cache_creation_input_tokens"]
    short = [{"type": "text", "text": "short", "cache_control": {"type": "ephemeral"}}]
    tiny = (await client.messages({**user("q"), "system": short})).json["usage"]
    assert tiny["cache_creation_input_tokens"] == 0


async def test_cached_directive(client: Client) -> None:
    usage = (await client.messages(user("x " * 400 + "[[sandbox:cached=100]]"))).json["usage"]
    assert usage["cache_read_input_tokens"] == 100


async def test_refusal_and_no_usage(client: Client) -> None:
    refused = (await client.messages(user("x [[sandbox:fault=content_filter]]"))).json
    assert refused["stop_reason"] == "refusal"
    assert "usage" not in (await client.messages(user("x [[sandbox:no_usage]]"))).json


async def test_headers_and_validation(client: Client) -> None:
    missing_key = await client.messages(user("hi"), headers={"anthropic-version": "2023-06-01"})
    assert missing_key.status == 401 and missing_key.json["error"]["type"] == "authentication_error"
    no_version = await client.messages(user("hi"), headers={"x-api-key": "k"})
    assert no_version.status == 400 and "anthropic-version" in no_version.json["error"]["message"]
    bad = await client.messages(user("hi"), headers={**ANTHROPIC_HEADERS, "x-api-key": "bad-key"})
    assert bad.status == 401
    url = client.sandbox.base_url("anthropic") + "/v1/messages"
    no_max = await client.post(url, {"model": "m", **user("hi")}, ANTHROPIC_HEADERS)
    assert no_max.status == 400 and no_max.json["error"]["message"] == "max_tokens: Field required"


def _system(*blocks: tuple[str, str | None]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for text, ttl in blocks:
        block: dict[str, object] = {"type": "text", "text": text}
        if ttl is not None:
            block["cache_control"] = {"type": "ephemeral", **({"ttl": ttl} if ttl != "-" else {})}
        out.append(block)
    return out


async def test_one_hour_cache_write_then_read(client: Client) -> None:
    system = _system(("rules " * 1500, "1h"))
    first = (await client.messages({**user("q1"), "system": system})).json["usage"]
    written = first["cache_creation_input_tokens"]
    assert written > 1024 and first["cache_creation"] == {
        "ephemeral_5m_input_tokens": 0,
        "ephemeral_1h_input_tokens": written,
    }
    second = (await client.messages({**user("q2"), "system": system})).json["usage"]
    assert second["cache_read_input_tokens"] == written
    assert second["cache_creation_input_tokens"] == 0


async def test_mixed_ttls_bill_as_anthropic_does(client: Client) -> None:
    """A = read, B = last 1h breakpoint, C = last breakpoint: 1h writes B - A, 5m C - B."""
    system = _system(("hour " * 1500, "1h"), ("five " * 800, "5m"))
    first = (await client.messages({**user("q1"), "system": system})).json["usage"]
    split = first["cache_creation"]
    assert split["ephemeral_1h_input_tokens"] > 1024
    assert split["ephemeral_5m_input_tokens"] > 700
    assert first["cache_creation_input_tokens"] == sum(split.values())
    # the same 1h prefix with a different tail: the 1h part is read, the new tail written
    other = _system(("hour " * 1500, "1h"), ("tail " * 900, "-"))
    second = (await client.messages({**user("q2"), "system": other})).json["usage"]
    assert second["cache_read_input_tokens"] == split["ephemeral_1h_input_tokens"]
    assert second["cache_creation"]["ephemeral_1h_input_tokens"] == 0
    assert second["cache_creation"]["ephemeral_5m_input_tokens"] > 800


async def test_cache_control_limits(client: Client) -> None:
    five = _system(*[(f"block {i}", "-") for i in range(5)])
    reply = await client.messages({**user("q"), "system": five})
    assert reply.status == 400
    assert reply.json["error"]["message"] == (
        "A maximum of 4 blocks with cache_control may be provided. Found 5."
    )
    bad = _system(("x", "2h"))
    reply = await client.messages({**user("q"), "system": bad})
    assert reply.status == 400 and "ttl" in reply.json["error"]["message"]


async def test_stream_usage_carries_the_cache(client: Client) -> None:
    system = _system(("stream rules " * 900, "-"))
    body = {**user("q [[sandbox:tokens=5]]"), "system": system, "stream": True}
    await client.messages(body)
    data = (await client.messages(body)).data
    start = next(d for d in data if d["type"] == "message_start")["message"]["usage"]
    delta = next(d for d in data if d["type"] == "message_delta")["usage"]
    assert start["cache_read_input_tokens"] > 1024
    assert delta["cache_read_input_tokens"] == start["cache_read_input_tokens"]
    assert delta["input_tokens"] == start["input_tokens"] and delta["output_tokens"] == 5


async def test_cache_log_names_each_breakpoint(client: Client) -> None:
    tools = [{**WEATHER, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    body = {**user("q"), "tools": tools, "system": _system(("s " * 50, "-"))}
    reply = (await client.messages(body)).json
    status, log = await client.control("GET", "/_sandbox/cache")
    assert status == 200
    (entry,) = [r for r in log["requests"] if r["id"] == reply["id"]]
    assert entry["cache_control"] == [
        {"path": "tools.0", "ttl": "1h"},
        {"path": "system.0", "ttl": "5m"},
    ]
