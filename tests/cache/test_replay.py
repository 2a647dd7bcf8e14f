"""A stream is assembled into a completion, and a completion replayed as a stream."""

from __future__ import annotations

from typing import Any

import orjson

from kanjia.cache import assemble, is_complete, replay_chunks, sse_payloads

COMPLETION: dict[str, Any] = {
    "id": "x", "object": "chat.completion", "created": 1, "model": "deepseek-chat",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hello there",
                                 "reasoning_content": "think"},
         "finish_reason": "stop", "logprobs": None},
        {"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get", "arguments": "{\"a\": 1}"}}]},
         "finish_reason": "tool_calls", "logprobs": None}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
}


def test_replay_then_assemble_is_the_same_answer() -> None:
    chunks = replay_chunks(COMPLETION, "chatcmpl-r", include_usage=True)
    parsed = [orjson.loads(c) for c in chunks]
    assert all(p["object"] == "chat.completion.chunk" and p["id"] == "chatcmpl-r"
               for p in parsed)
    assert parsed[-1]["choices"] == [] and parsed[-1]["usage"] == COMPLETION["usage"]
    back = assemble(chunks)
    assert back is not None
    for got, want in zip(back["choices"], COMPLETION["choices"], strict=True):
        assert got["message"] == {k: v for k, v in want["message"].items()}
        assert got["finish_reason"] == want["finish_reason"]
    assert back["usage"] == COMPLETION["usage"]


def test_usage_chunk_only_when_asked() -> None:
    chunks = replay_chunks(COMPLETION, "r", include_usage=False)
    assert not any(b'"usage"' in c for c in chunks)


def test_split_tool_call_deltas_are_joined() -> None:
    frames = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in [
        {"id": "a", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        {"id": "a", "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "c1", "type": "function",
             "function": {"name": "f", "arguments": "{\"x\""}}]}}]},
        {"id": "a", "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": ": 2}"}}]}}]},
        {"id": "a", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]) + b"data: [DONE]\n\n"
    done = assemble(sse_payloads(frames))
    assert done is not None and is_complete(done)
    call = done["choices"][0]["message"]["tool_calls"][0]
    assert call == {"id": "c1", "type": "function",
                    "function": {"name": "f", "arguments": "{\"x\": 2}"}}


def test_only_whole_answers_count() -> None:
    assert is_complete(COMPLETION)
    cut = {**COMPLETION, "choices": [{**COMPLETION["choices"][0], "finish_reason": "length"}]}
    assert not is_complete(cut)
    assert not is_complete({"error": {"message": "x"}})
    assert not is_complete({**COMPLETION, "choices": []})
    no_end = [orjson.dumps({"id": "a", "choices": [{"index": 0,
                                                     "delta": {"content": "hal"}}]})]
    done = assemble(no_end)
    assert done is not None and not is_complete(done)        # a stream cut before its end
    assert assemble([b'{"error": {"message": "broken"}}']) is None
