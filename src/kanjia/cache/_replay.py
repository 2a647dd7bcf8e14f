"""A cached answer is one OpenAI chat completion; a stream is assembled into one, and a
hit asked as a stream is replayed from one.

Only whole answers are kept: every choice ended by itself (``stop``, ``tool_calls``,
``function_call``), not cut off (``length``), not filtered, not an error.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import orjson

__all__ = ["COMPLETE", "assemble", "is_complete", "replay_chunks", "sse_payloads"]

#: finish reasons of an answer that ended by itself
COMPLETE = frozenset({"stop", "tool_calls", "function_call", "end_turn"})


def is_complete(completion: Any) -> bool:
    """A whole, successful chat completion (worth answering again)."""
    if not isinstance(completion, dict) or "error" in completion:
        return False
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    for c in choices:
        if not isinstance(c, dict) or c.get("finish_reason") not in COMPLETE:
            return False
        if not isinstance(c.get("message"), dict):
            return False
    return True


def sse_payloads(frames: bytes) -> list[bytes]:
    """The ``data:`` payloads of framed SSE events (``[DONE]`` left out)."""
    out: list[bytes] = []
    for event in frames.split(b"\n\n"):
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                data = line[5:].strip()
                if data and data != b"[DONE]":
                    out.append(data)
    return out


def _merge_tool_calls(into: list[dict[str, Any]], deltas: Any) -> None:
    for d in deltas if isinstance(deltas, list) else ():
        if not isinstance(d, dict):
            continue
        index = d.get("index", len(into))
        while len(into) <= index:
            into.append({"id": None, "type": "function",
                         "function": {"name": "", "arguments": ""}})
        call = into[index]
        if d.get("id"):
            call["id"] = d["id"]
        if d.get("type"):
            call["type"] = d["type"]
        fn = d.get("function")
        if isinstance(fn, dict):
            if fn.get("name"):
                call["function"]["name"] += fn["name"]
            if isinstance(fn.get("arguments"), str):
                call["function"]["arguments"] += fn["arguments"]


def assemble(payloads: Iterable[bytes]) -> dict[str, Any] | None:
    """The chat completion a stream of chunks spelled out; None for an error or a shape
    this cannot rebuild exactly."""
    head: dict[str, Any] = {}
    choices: dict[int, dict[str, Any]] = {}
    usage: Any = None
    for raw in payloads:
        try:
            chunk = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(chunk, dict) or "error" in chunk:
            return None
        if not head:
            head = {k: chunk.get(k) for k in ("id", "created", "model", "system_fingerprint")}
        if chunk.get("usage"):
            usage = chunk["usage"]
        for c in chunk.get("choices") or ():
            if not isinstance(c, dict):
                return None
            i = int(c.get("index") or 0)
            acc = choices.setdefault(i, {"content": [], "reasoning": [], "tools": [],
                                         "role": "assistant", "finish_reason": None,
                                         "refusal": []})
            delta = c.get("delta") or {}
            if isinstance(delta.get("content"), str):
                acc["content"].append(delta["content"])
            if isinstance(delta.get("reasoning_content"), str):
                acc["reasoning"].append(delta["reasoning_content"])
            if isinstance(delta.get("refusal"), str):
                acc["refusal"].append(delta["refusal"])
            if delta.get("tool_calls"):
                _merge_tool_calls(acc["tools"], delta["tool_calls"])
            if c.get("finish_reason"):
                acc["finish_reason"] = c["finish_reason"]
    if not choices:
        return None
    out_choices = []
    for i in sorted(choices):
        acc = choices[i]
        message: dict[str, Any] = {"role": "assistant",
                                   "content": "".join(acc["content"]) or None}
        if acc["reasoning"]:
            message["reasoning_content"] = "".join(acc["reasoning"])
        if acc["refusal"]:
            message["refusal"] = "".join(acc["refusal"])
        if acc["tools"]:
            message["tool_calls"] = acc["tools"]
        out_choices.append({"index": i, "message": message,
                            "finish_reason": acc["finish_reason"], "logprobs": None})
    completion = {"id": head.get("id"), "object": "chat.completion",
                  "created": head.get("created"), "model": head.get("model"),
                  "choices": out_choices}
    if head.get("system_fingerprint"):
        completion["system_fingerprint"] = head["system_fingerprint"]
    if usage is not None:
        completion["usage"] = usage
    return completion


def replay_chunks(completion: dict[str, Any], rid: str, include_usage: bool) -> list[bytes]:
    """``completion`` as the chunks of a chat completion stream: per choice its role,
    reasoning, content and tool calls, then its finish reason; the usage chunk only when
    the client asked for it (``stream_options.include_usage``)."""
    created = int(time.time())
    base = {"id": rid, "object": "chat.completion.chunk", "created": created,
            "model": completion.get("model")}
    if completion.get("system_fingerprint"):
        base["system_fingerprint"] = completion["system_fingerprint"]

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return orjson.dumps({**base, "choices": choices, **extra})

    out: list[bytes] = []
    for c in completion.get("choices") or ():
        i = c.get("index", 0)
        msg = c.get("message") or {}
        out.append(chunk([{"index": i, "delta": {"role": "assistant", "content": ""},
                           "logprobs": None, "finish_reason": None}]))
        if msg.get("reasoning_content"):
            out.append(chunk([{"index": i,
                               "delta": {"reasoning_content": msg["reasoning_content"]},
                               "logprobs": None, "finish_reason": None}]))
        if msg.get("content"):
            out.append(chunk([{"index": i, "delta": {"content": msg["content"]},
                               "logprobs": None, "finish_reason": None}]))
        if msg.get("refusal"):
            out.append(chunk([{"index": i, "delta": {"refusal": msg["refusal"]},
                               "logprobs": None, "finish_reason": None}]))
        for n, call in enumerate(msg.get("tool_calls") or ()):
            out.append(chunk([{"index": i, "delta": {"tool_calls": [{
                "index": n, "id": call.get("id"), "type": call.get("type", "function"),
                "function": call.get("function")}]}, "logprobs": None,
                "finish_reason": None}]))
        out.append(chunk([{"index": i, "delta": {}, "logprobs": None,
                           "finish_reason": c.get("finish_reason")}]))
    if include_usage and completion.get("usage") is not None:
        out.append(chunk([], usage=completion["usage"]))
    return out
