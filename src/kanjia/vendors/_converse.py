"""OpenAI chat requests to the Bedrock Converse API and its responses back.

Converse (docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html):
``messages`` of content blocks (``text``, ``image``, ``toolUse``, ``toolResult``,
``reasoningContent``), ``system`` blocks, ``inferenceConfig`` (``maxTokens``,
``temperature``, ``topP``, ``stopSequences``) and ``toolConfig`` (``tools[].toolSpec``,
``toolChoice``). Usage: ``inputTokens`` (without the cache), ``outputTokens``,
``cacheReadInputTokens``, ``cacheWriteInputTokens``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson

from kanjia.catalog import Usage
from kanjia.errors import BadRequest
from kanjia.vendors._messages import data_url, image_url_of, json_args, text_of

__all__ = ["STOP", "converse_body", "converse_usage", "message_of"]

#: Converse stopReason -> OpenAI finish_reason
STOP = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
        "tool_use": "tool_calls", "guardrail_intervened": "content_filter",
        "content_filtered": "content_filter", "model_context_window_exceeded": "length"}
_JSON_INSTRUCTION = "Respond with one valid JSON object and nothing else."
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg",
                  "image/gif": "gif", "image/webp": "webp"}


_CACHE_POINT = {"cachePoint": {"type": "default"}}


def _cache_mark(blocks: list[dict[str, Any]], marked: Any) -> None:
    """An Anthropic-style ``cache_control`` (on a part, a message or a tool) becomes a
    Converse ``cachePoint`` block after what it marks: the prefix up to it is cached."""
    if marked is not None and blocks and blocks[-1] != _CACHE_POINT:
        blocks.append(dict(_CACHE_POINT))


def _content(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, dict):
            raise BadRequest("content parts must be objects")
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append({"text": part["text"]})
                _cache_mark(blocks, part.get("cache_control"))
        elif part.get("type") == "image_url":
            split = data_url(image_url_of(part))
            if split is None or split[0] not in _IMAGE_FORMATS:
                raise BadRequest("bedrock takes images as data: URLs (png, jpeg, gif, webp)")
            try:
                raw = base64.b64decode(split[1], validate=True)
            except ValueError:
                raise BadRequest("an image data: URL is not valid base64") from None
            # the JSON wire form of a blob is base64 (what boto3 sends for bytes)
            blocks.append({"image": {"format": _IMAGE_FORMATS[split[0]],
                                     "source": {"bytes": base64.b64encode(raw).decode()}}})
    return blocks


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    return {"toolResult": {"toolUseId": str(message.get("tool_call_id") or ""),
                           "content": [{"text": text_of(message.get("content")) or " "}]}}


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if out and out[-1]["role"] == role:  # Converse wants roles to alternate
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for m in messages:
        if not isinstance(m, dict):
            raise BadRequest("each message must be an object")
        role = m.get("role")
        if role in ("system", "developer"):
            continue
        if role == "tool":
            blocks = [_tool_result(m)]
            _cache_mark(blocks, m.get("cache_control"))
            add("user", blocks)
        elif role == "assistant":
            blocks = _content(m.get("content"))
            for call in m.get("tool_calls") or ():
                fn = call.get("function") or {}
                blocks.append({"toolUse": {"toolUseId": str(call.get("id") or ""),
                                           "name": fn.get("name", ""),
                                           "input": json_args(fn.get("arguments"))}})
            blocks = blocks or [{"text": " "}]
            _cache_mark(blocks, m.get("cache_control"))
            add("assistant", blocks)
        elif role == "user":
            blocks = _content(m.get("content")) or [{"text": " "}]
            _cache_mark(blocks, m.get("cache_control"))
            add("user", blocks)
        else:
            raise BadRequest(f"unsupported message role {role!r}")
    return out


def _tool_config(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        return None
    specs: list[dict[str, Any]] = []
    for t in tools:
        fn = t.get("function") if isinstance(t, dict) and t.get("type") == "function" else None
        if not isinstance(fn, dict):
            continue
        spec: dict[str, Any] = {"name": fn.get("name", ""), "inputSchema": {
            "json": fn.get("parameters") or {"type": "object", "properties": {}}}}
        if fn.get("description"):
            spec["description"] = fn["description"]
        specs.append({"toolSpec": spec})
        _cache_mark(specs, t.get("cache_control") or fn.get("cache_control"))
    choice = body.get("tool_choice")
    if choice == "none" or not specs:
        return None  # Converse has no "none": no tools offered
    config: dict[str, Any] = {"tools": specs}
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict):
        config["toolChoice"] = {"tool": {"name": (choice.get("function") or {}).get("name", "")}}
    elif choice not in (None, "auto"):
        raise BadRequest("tool_choice must be 'auto', 'none', 'required' or a function")
    return config


def converse_body(body: dict[str, Any]) -> dict[str, Any]:
    """The Converse request for an OpenAI chat request (the model goes in the URL)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise BadRequest("'messages' must be an array")
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise BadRequest("bedrock returns one choice: n must be 1")
    out: dict[str, Any] = {"messages": _messages(messages)}
    system: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, dict) and m.get("role") in ("system", "developer"):
            content = m.get("content")
            system.extend(_content(content) if isinstance(content, list)
                          else [{"text": text_of(content)}] if text_of(content) else [])
            _cache_mark(system, m.get("cache_control"))
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        # Converse has no JSON mode: asked for in the system prompt, as for Anthropic
        system.append({"text": _JSON_INSTRUCTION})
    if system:
        out["system"] = system
    config: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    for src, dst in (("temperature", "temperature"), ("top_p", "topP")):
        if body.get(src) is not None:
            config[dst] = body[src]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if config:
        out["inferenceConfig"] = config
    tools = _tool_config(body)
    if tools is not None:
        out["toolConfig"] = tools
    return out


def _count(u: Mapping[str, Any], name: str) -> int:
    value = u.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(name)
    return value


def converse_usage(u: Any) -> Usage | None:
    """Converse usage; ``inputTokens`` leaves out the cache, so the prompt is
    ``inputTokens + cacheReadInputTokens + cacheWriteInputTokens``. None when malformed
    (the caller then estimates, never bills zero)."""
    if not isinstance(u, Mapping) or ("inputTokens" not in u and "outputTokens" not in u):
        return None
    try:
        base_in = _count(u, "inputTokens")
        read = _count(u, "cacheReadInputTokens")
        write = _count(u, "cacheWriteInputTokens")
        output = _count(u, "outputTokens")
    except ValueError:
        return None
    return Usage(input_tokens=base_in + read + write, cached_tokens=read,
                 cache_write_tokens=write, output_tokens=output, reasoning_tokens=0)


def message_of(blocks: Any) -> tuple[dict[str, Any], str]:
    """An OpenAI assistant message from Converse content blocks, and its text (for
    counting when usage is missing)."""
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in blocks if isinstance(blocks, list) else ():
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            calls.append({"id": use.get("toolUseId"), "type": "function", "function": {
                "name": use.get("name"), "arguments": orjson.dumps(use.get("input", {})).decode()}})
        elif isinstance(block.get("reasoningContent"), dict):
            text = (block["reasoningContent"].get("reasoningText") or {}).get("text")
            if isinstance(text, str):
                reasoning.append(text)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    counted = "".join(texts) + "".join(reasoning) + "".join(
        c["function"]["name"] + c["function"]["arguments"] for c in calls)
    return message, counted
