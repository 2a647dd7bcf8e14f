"""Transport faults and latency: hangs, aborted connections, broken bodies, pacing."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from sandbox_helpers import KEY, Client, user

from kanjia.sandbox import SandboxSettings, run_sandbox


async def raw_stream(
    client: Client, vendor: str, text: str
) -> tuple[list[bytes], BaseException | None]:
    """Lines received before the stream ended or broke, and the error if it broke."""
    url = client.sandbox.base_url(vendor) + "/chat/completions"
    body = {"model": "m", **user(text), "stream": True}
    lines: list[bytes] = []
    try:
        async with client.session.post(url, json=body, headers=KEY) as response:
            async for line in response.content:
                lines.append(line)
    except (
        aiohttp.ClientPayloadError,
        aiohttp.ClientOSError,
        aiohttp.ServerDisconnectedError,
    ) as exc:
        return lines, exc
    return lines, None


async def test_timeout_hangs_then_answers(client: Client) -> None:
    url = client.sandbox.base_url("openai") + "/chat/completions"
    body = {"model": "m", **user("x [[sandbox:fault=timeout]]")}
    with pytest.raises(asyncio.TimeoutError):
        timeout = aiohttp.ClientTimeout(total=0.1)
        async with client.session.post(url, json=body, headers=KEY, timeout=timeout) as response:
            await response.read()
    started = time.perf_counter()
    reply = await client.chat("openai", user("x [[sandbox:fault=timeout]]"))
    assert reply.status == 200 and time.perf_counter() - started >= 0.25


async def test_reset_mid_stream_aborts_the_connection(client: Client) -> None:
    lines, error = await raw_stream(
        client, "deepseek", "x [[sandbox:fault=reset]] [[sandbox:tokens=30]]"
    )
    assert error is not None
    data = [line for line in lines if line.startswith(b"data: ")]
    assert 1 <= len(data) <= 3
    assert all(json.loads(line[6:]) for line in data)
    assert b"data: [DONE]\n" not in lines


async def test_reset_without_stream_sends_nothing(client: Client) -> None:
    url = client.sandbox.base_url("qwen") + "/chat/completions"
    body = {"model": "m", **user("x [[sandbox:fault=reset]]")}
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        async with client.session.post(url, json=body, headers=KEY) as response:
            await response.read()


async def test_reset_anthropic_and_gemini_streams(client: Client) -> None:
    anthropic = client.sandbox.base_url("anthropic") + "/v1/messages"
    body = {"model": "m", "max_tokens": 100, "stream": True, **user("x [[sandbox:fault=reset]]")}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    with pytest.raises(aiohttp.ClientPayloadError):
        async with client.session.post(anthropic, json=body, headers=headers) as response:
            await response.read()
    gemini = client.sandbox.base_url("gemini") + "/v1beta/models/g:streamGenerateContent?alt=sse"
    body = {"contents": [{"parts": [{"text": "x [[sandbox:fault=reset]] [[sandbox:tokens=40]]"}]}]}
    with pytest.raises(aiohttp.ClientPayloadError):
        async with client.session.post(
            gemini, json=body, headers={"x-goog-api-key": "k"}
        ) as response:
            await response.read()


async def test_malformed_bodies(client: Client) -> None:
    reply = await client.chat("openai", user("x [[sandbox:fault=malformed]]"))
    assert reply.status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.text)
    lines, error = await raw_stream(
        client, "openai", "x [[sandbox:fault=malformed]] [[sandbox:tokens=4]]"
    )
    assert error is None
    broken = 0
    for line in lines:
        if line.startswith(b"data: ") and line.strip() != b"data: [DONE]":
            try:
                json.loads(line[6:])
            except json.JSONDecodeError:
                broken += 1
    assert broken == 1
    assert lines[-2].strip() == b"data: [DONE]"


async def test_slow_stream_trickles(client: Client) -> None:
    started = time.perf_counter()
    lines, _ = await raw_stream(
        client, "openai", "x [[sandbox:fault=slow_stream]] [[sandbox:tokens=1]]"
    )
    assert time.perf_counter() - started >= 1.4  # 4 frames, 3 gaps of 500 ms
    assert any(b"[DONE]" in line for line in lines)


async def test_slow_stream_leaves_non_streams_alone(client: Client) -> None:
    started = time.perf_counter()
    reply = await client.chat(
        "openai", user("x [[sandbox:fault=slow_stream]] [[sandbox:tokens=8]]")
    )
    assert reply.status == 200 and time.perf_counter() - started < 0.4


async def test_latency_directives(client: Client) -> None:
    started = time.perf_counter()
    await client.chat("openai", user("x [[sandbox:latency_ms=150]]"))
    assert time.perf_counter() - started >= 0.14
    started = time.perf_counter()
    reply = await client.chat(
        "openai", {**user("x [[sandbox:chunk_ms=40]] [[sandbox:tokens=3]]"), "stream": True}
    )
    assert time.perf_counter() - started >= 0.15 and reply.events[-1][1] == "[DONE]"


async def test_server_wide_latency_and_deepseek_keepalive() -> None:
    settings = SandboxSettings(ttft_ms=120, chunk_ms=10)
    async with run_sandbox(settings) as sandbox, aiohttp.ClientSession() as session:
        client = Client(sandbox, session)
        started = time.perf_counter()
        await client.chat("qwen", user("x [[sandbox:tokens=2]]"))
        assert time.perf_counter() - started >= 0.13
        reply = await client.chat("deepseek", {**user("x [[sandbox:tokens=2]]"), "stream": True})
        assert reply.text.startswith(": keep-alive\n\n")
        fast = time.perf_counter()
        await client.chat("qwen", user("x [[sandbox:latency_ms=0]] [[sandbox:chunk_ms=0]]"))
        assert time.perf_counter() - fast < 0.1
