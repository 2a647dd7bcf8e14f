"""Wire format of the OpenAI-compatible vendors: bodies, streams, usage quirks."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest
from sandbox_helpers import Client, user

from kanjia.sandbox._vendors.openai_compat_vendors import OA_VENDORS

OPENAI_LIKE = sorted(OA_VENDORS)
INCLUDE_USAGE = [
    *("openai", "deepseek", "qwen", "moonshot", "siliconflow"),
    *("openrouter", "vllm", "doubao", "hunyuan"),
]
LAST_CHUNK = ["zhipu", "qianfan", "minimax", "spark"]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["city", "unit"],
        },
    },
}


def content_of(events: list[Any]) -> str:
    return "".join(c["delta"].get("content") or "" for e in events for c in e.get("choices", []))


@pytest.mark.parametrize("vendor", OPENAI_LIKE)
async def test_non_stream_shape(client: Client, vendor: str) -> None:
    reply = await client.chat(vendor, user("Tell me about prices [[sandbox:tokens=12]]"))
    assert reply.status == 200
    body = reply.json
    assert body["object"] == "chat.completion"
    assert body["model"] == "test-model"
    assert isinstance(body["created"], int) and body["id"]
    (choice,) = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert len(choice["message"]["content"].split()) == 12
    usage = body["usage"]
    assert usage["completion_tokens"] == 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + 12
    assert usage["prompt_tokens"] > 0


async def test_openai_specifics(client: Client) -> None:
    body = (await client.chat("openai", user("hello"))).json
    assert body["id"].startswith("chatcmpl-")
    assert body["system_fingerprint"].startswith("fp_")
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    minimax = (await client.chat("minimax", user("hello"))).json
    assert minimax["base_resp"] == {"status_code": 0, "status_msg": ""}


async def test_length_from_max_tokens_and_hash(client: Client) -> None:
    capped = (await client.chat("openai", {**user("hi"), "max_completion_tokens": 9})).json
    assert capped["usage"]["completion_tokens"] == 9
    assert capped["choices"][0]["finish_reason"] == "length"
    legacy = (await client.chat("deepseek", {**user("hi"), "max_tokens": 5})).json
    assert legacy["usage"]["completion_tokens"] == 5
    free = (await client.chat("qwen", user("a stable prompt"))).json
    again = (await client.chat("qwen", user("a stable prompt"))).json
    assert 16 <= free["usage"]["completion_tokens"] <= 64
    assert free["choices"][0]["message"] == again["choices"][0]["message"]
    cut = (await client.chat("openai", {**user("x [[sandbox:tokens=50]]"), "max_tokens": 20})).json
    assert cut["usage"]["completion_tokens"] == 20
    assert cut["choices"][0]["finish_reason"] == "length"


async def test_chinese_prompt_gets_chinese_reply(client: Client) -> None:
    body = (await client.chat("qwen", user("请介绍一下大模型价格战 [[sandbox:tokens=20]]"))).json
    text = body["choices"][0]["message"]["content"]
    assert len(text) == 20 and all(ord(ch) > 0x2E80 for ch in text)


@pytest.mark.parametrize("vendor", OPENAI_LIKE)
async def test_stream_framing(client: Client, vendor: str) -> None:
    reply = await client.chat(vendor, {**user("hi [[sandbox:tokens=6]]"), "stream": True})
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/event-stream")
    assert reply.text.endswith("data: [DONE]\n\n")
    assert reply.events[-1] == (None, "[DONE]")
    chunks = reply.data
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) == 6
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop" and all(f is None for f in finishes[:-1])


@pytest.mark.parametrize("vendor", INCLUDE_USAGE)
async def test_stream_usage_only_with_include_usage(client: Client, vendor: str) -> None:
    plain = await client.chat(vendor, {**user("hi [[sandbox:tokens=4]]"), "stream": True})
    assert not any("usage" in c and c["usage"] for c in plain.data)
    body = {
        **user("hi [[sandbox:tokens=4]]"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with_usage = (await client.chat(vendor, body)).data
    final = with_usage[-1]
    assert final["choices"] == [] and final["usage"]["completion_tokens"] == 4
    assert all(c["usage"] is None for c in with_usage[:-1])


@pytest.mark.parametrize("vendor", LAST_CHUNK)
async def test_stream_usage_on_last_content_chunk(client: Client, vendor: str) -> None:
    chunks = (await client.chat(vendor, {**user("hi [[sandbox:tokens=4]]"), "stream": True})).data
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["completion_tokens"] == 4
    assert not any("usage" in c for c in chunks[:-1])


async def test_deepseek_usage_and_cache(client: Client) -> None:
    body = (await client.chat("deepseek", user("x" * 1200 + " [[sandbox:cached=128]]"))).json
    usage = body["usage"]
    assert usage["prompt_cache_hit_tokens"] == 128
    assert (
        usage["prompt_cache_hit_tokens"] + usage["prompt_cache_miss_tokens"]
        == usage["prompt_tokens"]
    )
    assert usage["prompt_tokens_details"] == {"cached_tokens": 128}
    assert "completion_tokens_details" not in usage


async def test_deepseek_prefix_cache_in_64_token_units(client: Client) -> None:
    system = {"role": "system", "content": "You are a careful assistant. " * 40}
    first = {"messages": [system, {"role": "user", "content": "first question"}]}
    second = {"messages": [system, {"role": "user", "content": "second question"}]}
    miss = (await client.chat("deepseek", first)).json["usage"]
    assert miss["prompt_cache_hit_tokens"] == 0
    hit = (await client.chat("deepseek", second)).json["usage"]
    assert hit["prompt_cache_hit_tokens"] > 0
    assert hit["prompt_cache_hit_tokens"] % 64 == 0
    assert hit["prompt_cache_hit_tokens"] + hit["prompt_cache_miss_tokens"] == hit["prompt_tokens"]


async def test_deepseek_reasoner(client: Client) -> None:
    body = {"model": "deepseek-reasoner", **user("think [[sandbox:tokens=8]]")}
    plain = (await client.chat("deepseek", body)).json
    message = plain["choices"][0]["message"]
    reasoning = plain["usage"]["completion_tokens_details"]["reasoning_tokens"]
    assert message["reasoning_content"] and reasoning > 0
    assert plain["usage"]["completion_tokens"] == 8 + reasoning
    chunks = (await client.chat("deepseek", {**body, "stream": True})).data
    thought = "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks)
    assert thought == message["reasoning_content"]
    assert content_of(chunks) == message["content"]


@pytest.mark.parametrize("vendor", ["moonshot", "zhipu", "doubao", "qwen", "openai"])
async def test_cached_tokens_details(client: Client, vendor: str) -> None:
    body = {**user("hello " * 100 + "[[sandbox:cached=32]]"), "model": "kimi-k2-0711-preview"}
    reply = await client.chat(vendor, body)
    usage = reply.json["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 32


async def test_moonshot_v1_has_no_automatic_cache(client: Client) -> None:
    """Kimi caches prefixes by itself; moonshot-v1 only through its Context Caching API."""
    prompt = {**user("a long shared prefix " * 200), "model": "moonshot-v1-8k"}
    for _ in range(2):
        usage = (await client.chat("moonshot", prompt)).json["usage"]
        assert "prompt_tokens_details" not in usage and "cached_tokens" not in usage
    kimi = {**prompt, "model": "kimi-k2-0711-preview"}
    await client.chat("moonshot", kimi)
    again = (await client.chat("moonshot", kimi)).json["usage"]
    assert again["prompt_tokens_details"]["cached_tokens"] > 256


@pytest.mark.parametrize("vendor", ["openai", "vllm", "qwen"])
async def test_n_choices(client: Client, vendor: str) -> None:
    body = (await client.chat(vendor, {**user("hi [[sandbox:tokens=5]]"), "n": 3})).json
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert body["usage"]["completion_tokens"] == 15
    chunks = (
        await client.chat(vendor, {**user("hi [[sandbox:tokens=5]]"), "n": 2, "stream": True})
    ).data
    finished = [c["choices"][0]["index"] for c in chunks if c["choices"][0]["finish_reason"]]
    assert finished == [0, 1]


@pytest.mark.parametrize("vendor", ["deepseek", "zhipu", "ollama"])
async def test_n_ignored_where_unsupported(client: Client, vendor: str) -> None:
    body = (await client.chat(vendor, {**user("hi"), "n": 3})).json
    assert len(body["choices"]) == 1


async def test_json_mode(client: Client) -> None:
    body = {
        **user("answer in json [[sandbox:tokens=30]]"),
        "response_format": {"type": "json_object"},
    }
    content = (await client.chat("openai", body)).json["choices"][0]["message"]["content"]
    assert isinstance(json.loads(content), dict)
    chunks = (await client.chat("deepseek", {**body, "stream": True})).data
    assert isinstance(json.loads(content_of(chunks)), dict)


async def test_stop_sequence(client: Client) -> None:
    first = (await client.chat("openai", user("stop test [[sandbox:tokens=40]]"))).json
    words = first["choices"][0]["message"]["content"].split()
    cut = (
        await client.chat(
            "openai", {**user("stop test [[sandbox:tokens=40]]"), "stop": [words[10]]}
        )
    ).json
    assert words[10] not in cut["choices"][0]["message"]["content"]
    assert cut["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    "extra",
    [
        {"messages": [{"role": "user", "content": "weather? [[sandbox:tool]]"}]},
        {"tool_choice": "required"},
        {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
    ],
)
async def test_tool_call(client: Client, extra: dict[str, Any]) -> None:
    body = {**user("weather in Paris?"), "tools": [WEATHER_TOOL], **extra}
    choice = (await client.chat("openai", body)).json["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "example", "unit": "celsius"}


async def test_no_tool_call_without_trigger(client: Client) -> None:
    body = {**user("weather in Paris?"), "tools": [WEATHER_TOOL]}
    choice = (await client.chat("openai", body)).json["choices"][0]
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]
    after_tool = {
        "tools": [WEATHER_TOOL],
        "messages": [
            {"role": "user", "content": "weather? [[sandbox:tool]]"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ],
    }
    choice = (await client.chat("openai", after_tool)).json["choices"][0]
    assert choice["finish_reason"] == "stop"


@pytest.mark.parametrize("vendor", ["openai", "zhipu", "deepseek"])
async def test_streamed_tool_call(client: Client, vendor: str) -> None:
    body = {**user("weather? [[sandbox:tool]]"), "tools": [WEATHER_TOOL], "stream": True}
    chunks = (await client.chat(vendor, body)).data
    deltas = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert len(deltas) >= 3
    assert deltas[0]["id"].startswith("call_") and deltas[0]["function"]["name"] == "get_weather"
    assert all("id" not in d for d in deltas[1:])
    arguments = "".join(d["function"].get("arguments", "") for d in deltas)
    assert json.loads(arguments) == {"city": "example", "unit": "celsius"}
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "tool_calls"


async def test_no_usage_directive(client: Client) -> None:
    assert "usage" not in (await client.chat("openai", user("x [[sandbox:no_usage]]"))).json
    body = {
        **user("x [[sandbox:no_usage]]"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert not any(c.get("usage") for c in (await client.chat("openai", body)).data)
    chunks = (await client.chat("zhipu", {**user("x [[sandbox:no_usage]]"), "stream": True})).data
    assert not any("usage" in c for c in chunks)


async def test_auth(client: Client) -> None:
    assert (await client.chat("deepseek", user("hi"), headers={})).status == 401
    bad = await client.chat("deepseek", user("hi"), headers={"Authorization": "Bearer bad-key"})
    assert bad.status == 401 and bad.json["error"]["type"] == "authentication_error"
    for vendor in ("vllm", "ollama", "llamacpp"):
        assert (await client.chat(vendor, user("hi"), headers={})).status == 200


async def test_bad_request(client: Client) -> None:
    reply = await client.chat("openai", {"messages": []})
    assert reply.status == 400 and reply.json["error"]["type"] == "invalid_request_error"


async def test_embeddings(client: Client) -> None:
    url = client.sandbox.base_url("openai") + "/embeddings"
    headers = {"Authorization": "Bearer k"}
    body = {"model": "text-embedding-3-small", "input": ["hello", "world"]}
    reply = await client.post(url, body, headers)
    data = reply.json
    assert data["object"] == "list" and [d["index"] for d in data["data"]] == [0, 1]
    vector = data["data"][0]["embedding"]
    assert len(vector) == 1536 and abs(sum(v * v for v in vector) - 1) < 1e-3
    assert data["usage"]["prompt_tokens"] == data["usage"]["total_tokens"] > 0
    again = (
        await client.post(url, {**body, "dimensions": 8, "encoding_format": "base64"}, headers)
    ).json
    raw = base64.b64decode(again["data"][0]["embedding"])
    assert len(struct.unpack("<8f", raw)) == 8
    deepseek = (
        await client.post(
            client.sandbox.base_url("qwen") + "/embeddings", {"model": "e", "input": "x"}, headers
        )
    ).json
    assert len(deepseek["data"][0]["embedding"]) == 1024


async def test_models(client: Client) -> None:
    async with client.session.get(
        client.sandbox.base_url("deepseek") + "/models", headers={"Authorization": "Bearer k"}
    ) as r:
        body = await r.json()
    assert body["object"] == "list"
    assert {m["id"] for m in body["data"]} >= {"deepseek-chat", "deepseek-reasoner"}
    async with client.session.get(client.sandbox.base_url("deepseek") + "/models") as r:
        assert r.status == 401
