"""Parsing a Bedrock Converse request into a neutral ``Ask``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from kanjia.sandbox._cache import Segments
from kanjia.sandbox._directives import Directives, parse_directives
from kanjia.sandbox._json import as_dict, as_list, int_or_none
from kanjia.sandbox._plan import Ask
from kanjia.sandbox._state import SandboxState
from kanjia.sandbox._tokens import IMAGE_TOKENS, MESSAGE_OVERHEAD, PRIMING, text_tokens
from kanjia.sandbox._tools import ToolCall, example_args

__all__ = ["VENDOR", "ConverseRequest", "cache_usage", "parse_converse"]

VENDOR = "bedrock"
_ROLES = ("user", "assistant")
#: Bedrock caches no prefix shorter than this (Claude and Nova models' minimum)
CACHE_MINIMUM = 1024
_TTL_S = 300.0


@dataclass(frozen=True, slots=True)
class ConverseRequest:
    model: str
    ask: Ask
    directives: Directives
    segments: Segments = field(default_factory=Segments)
    #: indexes into ``segments.bounds`` of the boundaries ``cachePoint`` blocks mark
    marks: tuple[int, ...] = ()


def _block_tokens(block: dict[str, Any]) -> tuple[str, int]:
    """The text of one content block, and the extra tokens of what is not text."""
    if isinstance(block.get("text"), str):
        return block["text"], 0
    if "image" in block:
        image = as_dict(block["image"])
        if image.get("format") not in ("png", "jpeg", "gif", "webp") or \
                not isinstance(as_dict(image.get("source")).get("bytes"), str):
            raise ValueError("image blocks need a format and source.bytes")
        return "", IMAGE_TOKENS
    if "toolUse" in block:
        use = as_dict(block["toolUse"])
        if not isinstance(use.get("toolUseId"), str) or not isinstance(use.get("name"), str):
            raise ValueError("toolUse needs toolUseId and name")
        return use["name"] + orjson.dumps(use.get("input", {})).decode(), 0
    if "toolResult" in block:
        result = as_dict(block["toolResult"])
        if not isinstance(result.get("toolUseId"), str):
            raise ValueError("toolResult needs toolUseId")
        parts = [str(p["text"]) if isinstance(p.get("text"), str)
                 else orjson.dumps(p.get("json")).decode()
                 for p in map(as_dict, as_list(result.get("content")))]
        return "".join(parts), 0
    if "reasoningContent" in block:
        return "", 0
    raise ValueError(f"unknown content block {sorted(block)[:1]}")


def _tool(config: dict[str, Any], directives: Directives, ends_with_user: bool
          ) -> ToolCall | None:
    specs = [as_dict(as_dict(t).get("toolSpec")) for t in as_list(config.get("tools"))]
    specs = [s for s in specs if isinstance(s.get("name"), str)]
    if not specs:
        return None
    choice = as_dict(config.get("toolChoice"))
    chosen: dict[str, Any] | None = None
    if "tool" in choice:
        name = as_dict(choice["tool"]).get("name")
        chosen = next((s for s in specs if s["name"] == name), None)
        if chosen is None:
            raise ValueError(f"toolChoice names an unknown tool {name!r}")
    elif "any" in choice or (directives.tool and ends_with_user):
        chosen = specs[0]
    if chosen is None:
        return None
    schema = as_dict(chosen.get("inputSchema")).get("json")
    return ToolCall(chosen["name"], example_args(schema))


def parse_converse(model: str, data: Any) -> ConverseRequest:
    """The request's ``Ask``; ``ValueError`` (a ValidationException) when malformed.

    Each block is a cache segment; a ``cachePoint`` block marks the boundary before it."""
    if not isinstance(data, dict):
        raise ValueError("request body must be a JSON object")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list")
    segments = Segments()
    marks: list[int] = []

    def block(raw: Any, overhead: int) -> str:
        item = as_dict(raw)
        if "cachePoint" in item:
            if segments.bounds and (not marks or marks[-1] != len(segments.bounds) - 1):
                marks.append(len(segments.bounds) - 1)
            return ""
        text, extra = _block_tokens(item)
        segments.add(text, text_tokens(text) + extra + overhead)
        return text

    for raw in as_list(data.get("system")):
        block(raw, MESSAGE_OVERHEAD)
    config = as_dict(data.get("toolConfig"))
    for raw in as_list(config.get("tools")):
        item = as_dict(raw)
        if "cachePoint" in item:
            block(item, 0)
        else:
            spec = orjson.dumps(item.get("toolSpec")).decode()
            segments.add(spec, text_tokens(spec))
    last_user = ""
    previous = None
    for message in messages:
        message = as_dict(message)
        role = message.get("role")
        if role not in _ROLES:
            raise ValueError(f"messages role must be one of {_ROLES}")
        if role == previous:
            raise ValueError("A conversation must alternate between user and assistant roles.")
        previous = role
        content = as_list(message.get("content"))
        if not content:
            raise ValueError("messages content must not be empty")
        texts = [block(raw, MESSAGE_OVERHEAD if i == 0 else 0) for i, raw in enumerate(content)]
        if role == "user":
            last_user = "\n".join(t for t in texts if t)
    if messages[0].get("role") != "user":
        raise ValueError("A conversation must start with a user message.")
    directives = parse_directives(last_user)
    inference = as_dict(data.get("inferenceConfig"))
    stop = tuple(s for s in as_list(inference.get("stopSequences")) if isinstance(s, str))
    ask = Ask(prompt_tokens=PRIMING + segments.tokens, last_user=last_user,
              directives=directives, max_tokens=int_or_none(inference.get("maxTokens")),
              max_is_cap=True, tool=_tool(config, directives, messages[-1].get("role") == "user"),
              stop=stop)
    return ConverseRequest(model, ask, directives, segments, tuple(marks))


def cache_usage(state: SandboxState, req: ConverseRequest,
                scope: str = VENDOR) -> tuple[int, int]:
    """(read, written) prompt tokens: the prefix up to the longest live cache point is
    read, the rest up to the last cache point written (five minutes, refreshed by hits);
    prefixes under ``CACHE_MINIMUM`` tokens are not cached. ``[[sandbox:cached=N]]``
    reads N."""
    total = req.ask.prompt_tokens
    if req.directives.cached is not None:
        return min(req.directives.cached, total), 0
    bounds = req.segments.bounds
    marks = [bounds[i] for i in req.marks if bounds[i][1] >= CACHE_MINIMUM]
    cache = state.cache
    read = next((tokens for chain, tokens in reversed(marks) if cache.hit(scope, chain)), 0)
    written = max(0, marks[-1][1] - read) if marks else 0
    for chain, _ in marks:
        cache.keep(scope, chain, _TTL_S)
    return read, written
