"""Parsing an Anthropic Messages request into a neutral ``Ask``, and its
explicit (``cache_control``) prompt caching."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from kanjia.sandbox._cache import Segments
from kanjia.sandbox._directives import Directives, parse_directives
from kanjia.sandbox._json import as_dict, as_list, int_or_none
from kanjia.sandbox._openai_request import IMAGE_TOKENS
from kanjia.sandbox._plan import Ask
from kanjia.sandbox._state import SandboxState
from kanjia.sandbox._tokens import MESSAGE_OVERHEAD, PRIMING, text_tokens
from kanjia.sandbox._tools import ToolCall, example_args

__all__ = ["CACHE_MINIMUM", "MessagesRequest", "cache_usage", "parse_messages"]

#: Anthropic caches no prefix shorter than this many tokens
CACHE_MINIMUM = 1024


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    model: str
    stream: bool
    thinking: bool
    ask: Ask
    segments: Segments
    directives: Directives
    #: indexes into segments.bounds that end at a cache_control block
    breakpoints: list[int] = field(default_factory=list)


def _block_text(block: Any) -> tuple[str, int]:
    if isinstance(block, str):
        return block, 0
    if not isinstance(block, dict):
        return "", 0
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", "")), 0
    if kind in ("image", "document"):
        return "", IMAGE_TOKENS
    if kind == "tool_use":
        return orjson.dumps(block.get("input", {})).decode() + str(block.get("name", "")), 0
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return "\n".join(_block_text(b)[0] for b in content), 0
        return str(content or ""), 0
    if kind == "thinking":
        return str(block.get("thinking", "")), 0
    return "", 0


def _is_text(block: Any) -> bool:
    return isinstance(block, str) or (isinstance(block, dict) and block.get("type") == "text")


def _add_blocks(
    segments: Segments, breakpoints: list[int], blocks: list[Any], overhead: int
) -> None:
    for block in blocks:
        text, extra = _block_text(block)
        segments.add(text, text_tokens(text) + extra + overhead)
        overhead = 0
        if isinstance(block, dict) and block.get("cache_control"):
            breakpoints.append(len(segments.bounds) - 1)


def _chosen_tool(
    data: dict[str, Any], directives: Directives, ends_with_user_text: bool
) -> ToolCall | None:
    tools = [t for t in as_list(data.get("tools")) if isinstance(t, dict) and "name" in t]
    choice = as_dict(data.get("tool_choice"))
    if not tools or choice.get("type") == "none":
        return None
    chosen = None
    if choice.get("type") == "tool":
        chosen = next((t for t in tools if t.get("name") == choice.get("name")), None)
    if chosen is None and (
        choice.get("type") in ("any", "tool") or (directives.tool and ends_with_user_text)
    ):
        chosen = tools[0]
    if chosen is None:
        return None
    return ToolCall(str(chosen["name"]), example_args(chosen.get("input_schema")))


def parse_messages(data: Any) -> MessagesRequest:
    """The request's ``Ask``; ``ValueError`` with Anthropic's wording when invalid."""
    if not isinstance(data, dict):
        raise ValueError("body: Input should be a valid dictionary")
    model, messages = data.get("model"), data.get("messages")
    max_tokens = int_or_none(data.get("max_tokens"))
    if not isinstance(model, str) or not model:
        raise ValueError("model: Field required")
    if max_tokens is None:
        raise ValueError("max_tokens: Field required")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages: at least one message is required")

    segments, breakpoints = Segments(), list[int]()
    tools = data.get("tools")
    _add_blocks(segments, breakpoints, tools if isinstance(tools, list) else [], 0)
    system = data.get("system")
    _add_blocks(segments, breakpoints, system if isinstance(system, list) else [system or ""], 0)
    last_user, ends_with_user_text = "", False
    for message in messages:
        if not isinstance(message, dict):
            raise ValueError("messages: each message must be an object")
        content = message.get("content")
        blocks = content if isinstance(content, list) else [content or ""]
        _add_blocks(segments, breakpoints, blocks, MESSAGE_OVERHEAD)
        if message.get("role") == "user":
            texts = [_block_text(b)[0] for b in blocks if _is_text(b)]
            last_user, ends_with_user_text = "\n".join(texts), bool(texts)
        else:
            ends_with_user_text = False
    directives = parse_directives(last_user)
    stops = data.get("stop_sequences")
    thinking = data.get("thinking")
    ask = Ask(
        prompt_tokens=segments.tokens + PRIMING,
        last_user=last_user,
        directives=directives,
        max_tokens=max_tokens,
        max_is_cap=True,
        tool=_chosen_tool(data, directives, ends_with_user_text),
        stop=tuple(s for s in stops if isinstance(s, str)) if isinstance(stops, list) else (),
        reasoning=isinstance(thinking, dict) and thinking.get("type") == "enabled",
    )
    return MessagesRequest(
        model=model,
        stream=data.get("stream") is True,
        thinking=ask.reasoning,
        ask=ask,
        segments=segments,
        directives=directives,
        breakpoints=breakpoints,
    )


def cache_usage(state: SandboxState, req: MessagesRequest) -> tuple[int, int]:
    """``(cache_read, cache_creation)`` tokens. The longest cache_control prefix
    seen before is read; the rest up to the last breakpoint is written."""
    total = req.ask.prompt_tokens
    if req.directives.cached is not None:
        return min(req.directives.cached, total), 0
    bounds = req.segments.bounds
    marks = [bounds[i] for i in req.breakpoints if bounds[i][1] >= CACHE_MINIMUM]
    if not marks:
        return 0, 0
    read = next(
        (tokens for chain, tokens in reversed(marks) if state.cache.seen("anthropic", chain)), 0
    )
    for chain, _ in marks:
        state.cache.remember("anthropic", chain)
    return read, marks[-1][1] - read
