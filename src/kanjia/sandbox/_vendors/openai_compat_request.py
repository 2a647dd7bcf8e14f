"""Parsing an OpenAI chat-completions request into a neutral ``Ask``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from kanjia.sandbox._cache import Segments
from kanjia.sandbox._directives import Directives, parse_directives
from kanjia.sandbox._json import int_or_none
from kanjia.sandbox._plan import Ask
from kanjia.sandbox._tokens import IMAGE_TOKENS, MESSAGE_OVERHEAD, PRIMING, text_tokens
from kanjia.sandbox._tools import ToolCall, example_args
from kanjia.sandbox._vendors.openai_compat_vendors import OpenAIVendor

__all__ = ["ChatRequest", "content_text", "parse_chat"]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    stream: bool
    include_usage: bool
    ask: Ask
    segments: Segments
    directives: Directives


def content_text(content: Any) -> tuple[str, int]:
    """The text of a message's content and the extra tokens of its non-text parts."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        return "", 0
    texts: list[str] = []
    extra = 0
    for part in content:
        if not isinstance(part, dict):
            continue
        text = part.get("text")
        if isinstance(text, str):
            texts.append(text)
        elif part.get("type") in ("image_url", "input_image", "input_audio"):
            extra += IMAGE_TOKENS
    return "\n".join(texts), extra


def _message_text(message: dict[str, Any]) -> tuple[str, int]:
    text, extra = content_text(message.get("content"))
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        text += orjson.dumps(calls).decode()
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str):
        text += reasoning
    return text, extra


def _chosen_tool(
    data: dict[str, Any], directives: Directives, ends_with_user: bool
) -> ToolCall | None:
    tools = data.get("tools")
    if not isinstance(tools, list) or not tools:
        return None
    functions = [
        t["function"] for t in tools if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    if not functions:
        return None
    choice = data.get("tool_choice")
    if choice == "none":
        return None
    chosen: dict[str, Any] | None = None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        chosen = next((f for f in functions if f.get("name") == name), None)
    if chosen is None and (
        choice == "required" or isinstance(choice, dict) or (directives.tool and ends_with_user)
    ):
        chosen = functions[0]
    if chosen is None:
        return None
    return ToolCall(str(chosen.get("name", "tool")), example_args(chosen.get("parameters")))


def parse_chat(data: Any, vendor: OpenAIVendor) -> ChatRequest:
    """The request's ``Ask``; ``ValueError`` when it is not a chat request."""
    if not isinstance(data, dict):
        raise ValueError("request body must be a JSON object")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty array")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError("'model' is required")

    segments = Segments()
    segments.add_tools(data.get("tools"))
    last_user = ""
    for message in messages:
        if not isinstance(message, dict):
            raise ValueError("each message must be an object")
        text, extra = _message_text(message)
        segments.add(text, text_tokens(text) + extra + MESSAGE_OVERHEAD)
        if message.get("role") == "user":
            last_user = text
    directives = parse_directives(last_user)
    ends_with_user = messages[-1].get("role") == "user"

    stop = data.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(s for s in stop or () if isinstance(s, str))
    response_format = data.get("response_format")
    json_mode = isinstance(response_format, dict) and response_format.get("type") in (
        "json_object",
        "json_schema",
    )
    n = int_or_none(data.get("n")) or 1
    stream_options = data.get("stream_options")
    ask = Ask(
        prompt_tokens=segments.tokens + PRIMING,
        last_user=last_user,
        directives=directives,
        max_tokens=int_or_none(data.get("max_completion_tokens"))
        or int_or_none(data.get("max_tokens")),
        n=n if vendor.supports_n else 1,
        json_mode=json_mode,
        tool=_chosen_tool(data, directives, ends_with_user),
        stop=stops,
        reasoning=vendor.is_reasoning(model),
    )
    return ChatRequest(
        model=model,
        stream=data.get("stream") is True,
        include_usage=isinstance(stream_options, dict)
        and stream_options.get("include_usage") is True,
        ask=ask,
        segments=segments,
        directives=directives,
    )
