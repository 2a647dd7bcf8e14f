"""Builders for OpenAI-format responses and chunks, shared by translating adapters."""

from __future__ import annotations

import time
from typing import Any

import orjson

from kanjia.catalog import Usage

__all__ = ["chunk", "completion", "usage_dict", "usage_from_openai"]


def usage_from_openai(u: dict[str, Any]) -> Usage:
    """Read an OpenAI-style usage object, with the Chinese vendors' extra fields."""
    prompt = int(u.get("prompt_tokens") or u.get("input_tokens") or 0)
    completion = int(u.get("completion_tokens") or u.get("output_tokens") or 0)
    pdetails = u.get("prompt_tokens_details") or {}
    cached = int(pdetails.get("cached_tokens") or u.get("prompt_cache_hit_tokens") or 0)
    cdetails = u.get("completion_tokens_details") or {}
    reasoning = int(cdetails.get("reasoning_tokens") or 0)
    return Usage(input_tokens=prompt, cached_tokens=min(cached, prompt), cache_write_tokens=0,
                 output_tokens=completion, reasoning_tokens=reasoning)


def usage_dict(u: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
    }
    if u.cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": u.cached_tokens}
    if u.reasoning_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": u.reasoning_tokens}
    return out


def completion(rid: str, model: str, choices: list[dict[str, Any]],
               usage: Usage | None) -> bytes:
    body: dict[str, Any] = {
        "id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage_dict(usage)
    return orjson.dumps(body)


def chunk(rid: str, model: str, created: int, delta: dict[str, Any] | None,
          finish_reason: str | None = None, usage: Usage | None = None,
          index: int = 0) -> bytes:
    body: dict[str, Any] = {
        "id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [] if delta is None else
        [{"index": index, "delta": delta, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage_dict(usage)
    return orjson.dumps(body)
