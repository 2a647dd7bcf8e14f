"""Builders for OpenAI-format responses and chunks, shared by translating adapters."""

from __future__ import annotations

import time
from typing import Any

import orjson

from kanjia.catalog import Usage

__all__ = ["chunk", "completion", "usage_dict", "usage_from_openai"]


def _count(obj: Any, name: str) -> int | None:
    """A token count field: None when absent or null; ValueError when not a count."""
    if not isinstance(obj, dict):
        raise ValueError(name)
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 \
            or value != int(value):
        raise ValueError(name)
    return int(value)


def usage_from_openai(u: dict[str, Any]) -> Usage | None:
    """Read an OpenAI-style usage object, with each vendor's cache fields; None when it
    is malformed (the caller then estimates, never bills zero).

    Cached (cache-read) prompt tokens, all part of ``prompt_tokens``:
    DeepSeek ``prompt_cache_hit_tokens`` (with ``prompt_cache_miss_tokens``; preferred
    when present), else ``prompt_tokens_details.cached_tokens`` (OpenAI, Qwen, GLM,
    Doubao, Kimi K2, OpenRouter), else Kimi's top-level ``cached_tokens``.
    Cache writes: Qwen explicit cache ``prompt_tokens_details.cache_creation_input_tokens``,
    OpenRouter ``prompt_tokens_details.cache_write_tokens``.
    """
    try:
        pdetails = u.get("prompt_tokens_details") or u.get("input_tokens_details") or {}
        prompt = _count(u, "prompt_tokens")
        if prompt is None:
            prompt = _count(u, "input_tokens")
        completion = _count(u, "completion_tokens")
        if completion is None:
            completion = _count(u, "output_tokens")
        hit = _count(u, "prompt_cache_hit_tokens")
        if hit is not None:
            cached = hit
            if prompt is None:
                prompt = hit + (_count(u, "prompt_cache_miss_tokens") or 0)
        else:
            cached = _count(pdetails, "cached_tokens") or _count(u, "cached_tokens") or 0
        written = _count(pdetails, "cache_creation_input_tokens")
        if written is None:
            written = _count(pdetails, "cache_write_tokens")
        write = written or 0
        cdetails = u.get("completion_tokens_details") or u.get("output_tokens_details") or {}
        reasoning = _count(cdetails, "reasoning_tokens") or 0
    except (ValueError, AttributeError):
        return None
    if prompt is None and completion is None:
        return None
    prompt = prompt or 0
    cached = min(cached, prompt)
    return Usage(input_tokens=prompt, cached_tokens=cached,
                 cache_write_tokens=min(write, prompt - cached), output_tokens=completion or 0,
                 reasoning_tokens=reasoning)


def usage_dict(u: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
    }
    if u.cached_tokens or u.cache_write_tokens:
        details: dict[str, Any] = {"cached_tokens": u.cached_tokens}
        if u.cache_write_tokens:  # OpenRouter's name for cache writes
            details["cache_write_tokens"] = u.cache_write_tokens
        out["prompt_tokens_details"] = details
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
