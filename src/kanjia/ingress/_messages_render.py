"""A chat completion → an Anthropic ``message`` object (usage in Anthropic's terms)."""

from __future__ import annotations

from typing import Any

import orjson

from kanjia.ingress._common import cache_write_of, finish_to_stop, usage_numbers

__all__ = ["anthropic_usage", "chat_to_message"]


def anthropic_usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI chat usage → Anthropic usage (input excludes cache reads and writes)."""
    prompt, cached, out = usage_numbers(usage)
    written = cache_write_of(usage)
    result: dict[str, Any] = {
        "input_tokens": max(0, prompt - cached - written),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "output_tokens": out,
    }
    if isinstance(usage, dict) and "cost" in usage:
        result["cost"] = usage["cost"]
        if "cost_currency" in usage:
            result["cost_currency"] = usage["cost_currency"]
    return result


def chat_to_message(chat: dict[str, Any], model: str, rid: str) -> dict[str, Any]:
    """A chat completion → an Anthropic ``message`` object."""
    choices = chat.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    msg = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    reasoning = msg.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = msg.get("content")
    if isinstance(text, list):
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        args = fn.get("arguments")
        try:
            parsed = orjson.loads(args) if isinstance(args, str) and args else (args or {})
        except orjson.JSONDecodeError:
            parsed = {"_raw": args}  # the model wrote invalid JSON: keep it visible
        content.append({"type": "tool_use", "id": call.get("id") or "",
                        "name": fn.get("name") or "", "input": parsed})
    stop = finish_to_stop(choice.get("finish_reason"))
    if any(b["type"] == "tool_use" for b in content) and stop == "end_turn":
        stop = "tool_use"
    return {"id": rid, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": anthropic_usage(chat.get("usage"))}
