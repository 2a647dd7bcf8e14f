"""A chat completion → a Responses API ``response`` object and its output items (also the
pieces the stream re-renderer builds its events from)."""

from __future__ import annotations

import time
from typing import Any

import orjson

from kanjia.ingress._common import cache_write_of, new_id, reasoning_of, usage_numbers
from kanjia.ingress._responses import ResponsesRequest

__all__ = ["assistant_turn", "call_item", "chat_to_response", "custom_item", "finish",
           "message_item", "reasoning_item", "shell", "usage_of"]


def usage_of(usage: Any) -> dict[str, Any]:
    """OpenAI chat usage → Responses usage (cost carried through when present)."""
    prompt, cached, out = usage_numbers(usage)
    result: dict[str, Any] = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reasoning_of(usage)},
        "total_tokens": prompt + out,
    }
    written = cache_write_of(usage)
    if written:
        result["input_tokens_details"]["cache_write_tokens"] = written
    if isinstance(usage, dict) and "cost" in usage:
        result["cost"] = usage["cost"]
        if "cost_currency" in usage:
            result["cost_currency"] = usage["cost_currency"]
    return result


def shell(rid: str, model: str, echo: dict[str, Any], status: str,
          created: int | None = None) -> dict[str, Any]:
    """A response object without output (what a stream announces first)."""
    return {"id": rid, "object": "response", "created_at": created or int(time.time()),
            "status": status, "background": False, "error": None, "incomplete_details": None,
            "model": model, "output": [], "usage": None, **echo}


def message_item(text: str, status: str = "completed") -> dict[str, Any]:
    return {"id": new_id("msg"), "type": "message", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [],
                         "logprobs": []}]}


def reasoning_item(text: str) -> dict[str, Any]:
    return {"id": new_id("rs"), "type": "reasoning", "summary": [],
            "content": [{"type": "reasoning_text", "text": text}]}


def call_item(call_id: str, name: str, arguments: str,
              status: str = "completed") -> dict[str, Any]:
    return {"id": new_id("fc"), "type": "function_call", "status": status,
            "call_id": call_id, "name": name, "arguments": arguments}


def custom_item(call_id: str, name: str, arguments: str,
                status: str = "completed") -> dict[str, Any]:
    """A custom tool's call: the ``input`` string the model wrote as its one argument."""
    try:
        parsed = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        parsed = None
    text = parsed.get("input") if isinstance(parsed, dict) else None
    return {"id": new_id("ctc"), "type": "custom_tool_call", "status": status,
            "call_id": call_id, "name": name,
            "input": text if isinstance(text, str) else arguments}


def finish(response: dict[str, Any], finish_reason: Any) -> None:
    """Set ``status``/``incomplete_details`` from the chat finish reason."""
    if finish_reason == "length":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    elif finish_reason == "content_filter":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "content_filter"}
    else:
        response["status"] = "completed"


def _arguments(item: dict[str, Any]) -> str:
    if item["type"] == "custom_tool_call":
        return orjson.dumps({"input": item["input"]}).decode()
    return str(item["arguments"] or "{}")


def assistant_turn(output: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat message an output stands for (stored for ``previous_response_id``)."""
    text = "".join(p.get("text", "") for item in output if item["type"] == "message"
                   for p in item["content"])
    calls = [{"id": item["call_id"], "type": "function",
              "function": {"name": item["name"], "arguments": _arguments(item)}}
             for item in output if item["type"] in ("function_call", "custom_tool_call")]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


def chat_to_response(chat: dict[str, Any], req: ResponsesRequest,
                     rid: str) -> dict[str, Any]:
    """A chat completion → a ``response`` object."""
    choices = chat.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    msg = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    reasoning = msg.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        output.append(reasoning_item(reasoning))
    text = msg.get("content")
    if isinstance(text, list):
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if isinstance(text, str) and text:
        output.append(message_item(text))
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        args = fn.get("arguments")
        name = str(fn.get("name") or "")
        make = custom_item if name in req.custom else call_item
        output.append(make(str(call.get("id") or new_id("call")), name,
                           args if isinstance(args, str) else orjson.dumps(args).decode()))
    response = shell(rid, req.model, req.echo, "completed")
    response["output"] = output
    response["usage"] = usage_of(chat.get("usage"))
    finish(response, choice.get("finish_reason"))
    return response
