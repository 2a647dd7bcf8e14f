"""Gemini wire format: generateContent, SSE and array streams, functionCall,
safety blocks, key errors, embeddings and countTokens."""

from __future__ import annotations

import json
from typing import Any

from sandbox_helpers import Client

FLASH = "gemini-2.0-flash"
TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": "get_weather",
                "parameters": {
                    "type": "OBJECT",
                    "properties": {"city": {"type": "STRING"}, "days": {"type": "INTEGER"}},
                    "required": ["city", "days"],
                },
            }
        ]
    }
]


def first_part(response: Any) -> Any:
    return response["candidates"][0]["content"]["parts"][0]


def contents(text: str) -> dict[str, object]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


async def test_generate_content(client: Client) -> None:
    body = {
        **contents("hello [[sandbox:tokens=6]]"),
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"temperature": 0.2},
    }
    reply = await client.gemini(f"{FLASH}:generateContent", body)
    assert reply.status == 200
    data = reply.json
    (candidate,) = data["candidates"]
    assert candidate["finishReason"] == "STOP" and candidate["content"]["role"] == "model"
    assert len(candidate["content"]["parts"][0]["text"].split()) == 6
    usage = data["usageMetadata"]
    assert usage["candidatesTokenCount"] == 6
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + 6
    assert data["modelVersion"] == FLASH and data["responseId"]


async def test_max_output_tokens_and_json(client: Client) -> None:
    body = {**contents("hi"), "generationConfig": {"maxOutputTokens": 5}}
    data = (await client.gemini(f"{FLASH}:generateContent", body)).json
    assert data["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert data["usageMetadata"]["candidatesTokenCount"] == 5
    mime = {
        **contents("json [[sandbox:tokens=20]]"),
        "generationConfig": {"responseMimeType": "application/json"},
    }
    text = first_part((await client.gemini(f"{FLASH}:generateContent", mime)).json)["text"]
    assert isinstance(json.loads(text), dict)


async def test_thinking_models_count_thoughts(client: Client) -> None:
    data = (
        await client.gemini("gemini-2.5-flash:generateContent", contents("x [[sandbox:tokens=4]]"))
    ).json
    usage = data["usageMetadata"]
    assert usage["thoughtsTokenCount"] > 0 and usage["candidatesTokenCount"] == 4
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + 4 + usage["thoughtsTokenCount"]
    off = {**contents("x"), "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}
    assert (
        "thoughtsTokenCount"
        not in (await client.gemini("gemini-2.5-flash:generateContent", off)).json["usageMetadata"]
    )


async def test_sse_stream(client: Client) -> None:
    reply = await client.gemini(
        f"{FLASH}:streamGenerateContent?alt=sse", contents("hi [[sandbox:tokens=20]]")
    )
    assert reply.headers["Content-Type"].startswith("text/event-stream")
    assert "[DONE]" not in reply.text and "\r\n\r\n" in reply.text
    chunks = reply.data
    assert len(chunks) == 3
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert len(text.split()) == 20
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None, None, "STOP"]
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 20


async def test_array_stream_without_alt_sse(client: Client) -> None:
    reply = await client.gemini(
        f"{FLASH}:streamGenerateContent", contents("hi [[sandbox:tokens=10]]")
    )
    assert reply.headers["Content-Type"].startswith("application/json")
    items = json.loads(reply.text)
    assert isinstance(items, list) and items[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_function_call(client: Client) -> None:
    forced = {
        **contents("weather?"),
        "tools": TOOLS,
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    }
    data = (await client.gemini(f"{FLASH}:generateContent", forced)).json
    part = first_part(data)
    assert part["functionCall"] == {"name": "get_weather", "args": {"city": "example", "days": 1}}
    by_directive = {**contents("weather? [[sandbox:tool]]"), "tools": TOOLS}
    streamed = (await client.gemini(f"{FLASH}:streamGenerateContent?alt=sse", by_directive)).data
    assert first_part(streamed[0])["functionCall"]["name"] == "get_weather"
    plain = {**contents("weather?"), "tools": TOOLS}
    assert "text" in first_part((await client.gemini(f"{FLASH}:generateContent", plain)).json)


async def test_candidate_count(client: Client) -> None:
    body = {**contents("x [[sandbox:tokens=3]]"), "generationConfig": {"candidateCount": 2}}
    data = (await client.gemini(f"{FLASH}:generateContent", body)).json
    assert [c["index"] for c in data["candidates"]] == [0, 1]
    assert data["usageMetadata"]["candidatesTokenCount"] == 6


async def test_safety_block(client: Client) -> None:
    data = (
        await client.gemini(
            f"{FLASH}:generateContent", contents("x [[sandbox:fault=content_filter]]")
        )
    ).json
    assert "candidates" not in data and data["promptFeedback"]["blockReason"] == "SAFETY"
    streamed = await client.gemini(
        f"{FLASH}:streamGenerateContent?alt=sse", contents("x [[sandbox:fault=content_filter]]")
    )
    assert streamed.data[0]["promptFeedback"]["blockReason"] == "SAFETY"


async def test_cached_content_tokens(client: Client) -> None:
    data = (
        await client.gemini(
            f"{FLASH}:generateContent", contents("x " * 400 + "[[sandbox:cached=50]]")
        )
    ).json
    assert data["usageMetadata"]["cachedContentTokenCount"] == 50


async def test_keys(client: Client) -> None:
    missing = await client.gemini(f"{FLASH}:generateContent", contents("hi"), headers={})
    assert missing.status == 403 and missing.json["error"]["status"] == "PERMISSION_DENIED"
    bad = await client.gemini(
        f"{FLASH}:generateContent", contents("hi"), headers={"x-goog-api-key": "bad-key"}
    )
    assert bad.status == 400 and bad.json["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    url = f"{client.sandbox.base_url('gemini')}/v1beta/models/{FLASH}:generateContent?key=AIza"
    assert (await client.post(url, contents("hi"), {})).status == 200


async def test_embeddings_and_count_tokens(client: Client) -> None:
    one = (
        await client.gemini(
            "text-embedding-004:embedContent", {"content": {"parts": [{"text": "hi"}]}}
        )
    ).json
    assert len(one["embedding"]["values"]) == 768
    batch = {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": t}]},
                "outputDimensionality": 16,
            }
            for t in ("a", "b")
        ]
    }
    many = (await client.gemini("gemini-embedding-001:batchEmbedContents", batch)).json
    assert [len(e["values"]) for e in many["embeddings"]] == [16, 16]
    count = (await client.gemini(f"{FLASH}:countTokens", contents("hello world"))).json
    assert count["totalTokens"] > 0


async def test_bad_requests(client: Client) -> None:
    empty = await client.gemini(f"{FLASH}:generateContent", {"contents": []})
    assert empty.status == 400 and empty.json["error"]["status"] == "INVALID_ARGUMENT"
    unknown = await client.gemini(f"{FLASH}:frobnicate", contents("x"))
    assert unknown.status == 404
