"""Parsing an Anthropic Messages request into a neutral ``Ask``, and its
explicit (``cache_control``) prompt caching."""

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

__all__ = ["CACHE_MINIMUM", "Breakpoint", "CacheUsage", "MessagesRequest", "cache_usage",
           "parse_messages"]

#: Anthropic caches no prefix shorter than this many tokens
CACHE_MINIMUM = 1024
#: at most this many cache_control blocks per request
MAX_BREAKPOINTS = 4
_TTL_S = {"5m": 300.0, "1h": 3600.0}


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """A block with ``cache_control``: where it is, its segment and its lifetime."""

    path: str
    index: int          # into segments.bounds
    ttl: str            # "5m" | "1h"


@dataclass(frozen=True, slots=True)
class CacheUsage:
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0

    @property
    def write(self) -> int:
        return self.write_5m + self.write_1h


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    model: str
    stream: bool
    thinking: bool
    ask: Ask
    segments: Segments
    directives: Directives
    #: the blocks with a cache_control, in prompt order
    breakpoints: list[Breakpoint] = field(default_factory=list)


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


def _ttl(path: str, control: Any) -> str:
    """The TTL of a block's ``cache_control``; ValueError in Anthropic's words."""
    if not isinstance(control, dict):
        raise ValueError(f"{path}.cache_control: Input should be a valid dictionary")
    if control.get("type") != "ephemeral":
        raise ValueError(f"{path}.cache_control.type: Input should be 'ephemeral'")
    ttl = control.get("ttl", "5m")
    if ttl not in _TTL_S:
        raise ValueError(f"{path}.cache_control.ephemeral.ttl: Input should be '5m' or '1h'")
    return str(ttl)


def _add_blocks(
    segments: Segments,
    breakpoints: list[Breakpoint],
    blocks: list[Any],
    overhead: int,
    where: str,
    tools: bool = False,
) -> None:
    for i, block in enumerate(blocks):
        if tools and isinstance(block, dict):  # a tool definition counts as its JSON
            text = orjson.dumps({k: v for k, v in block.items() if k != "cache_control"})
            segments.add(text.decode(), text_tokens(text.decode()))
        else:
            text_, extra = _block_text(block)
            segments.add(text_, text_tokens(text_) + extra + overhead)
        overhead = 0
        if isinstance(block, dict) and block.get("cache_control") is not None:
            path = f"{where}.{i}"
            ttl = _ttl(path, block["cache_control"])
            breakpoints.append(Breakpoint(path, len(segments.bounds) - 1, ttl))


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

    segments, breakpoints = Segments(), list[Breakpoint]()
    tools = data.get("tools")
    _add_blocks(
        segments, breakpoints, tools if isinstance(tools, list) else [], 0, "tools", tools=True
    )
    system = data.get("system")
    _add_blocks(
        segments, breakpoints, system if isinstance(system, list) else [system or ""], 0, "system"
    )
    last_user, ends_with_user_text = "", False
    for n, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError("messages: each message must be an object")
        content = message.get("content")
        blocks = content if isinstance(content, list) else [content or ""]
        _add_blocks(segments, breakpoints, blocks, MESSAGE_OVERHEAD, f"messages.{n}.content")
        if message.get("role") == "user":
            texts = [_block_text(b)[0] for b in blocks if _is_text(b)]
            last_user, ends_with_user_text = "\n".join(texts), bool(texts)
        else:
            ends_with_user_text = False
    if len(breakpoints) > MAX_BREAKPOINTS:
        raise ValueError(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(breakpoints)}."
        )
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


def cache_usage(state: SandboxState, req: MessagesRequest, message_id: str,
                scope: str = "anthropic") -> CacheUsage:
    """Cache reads and writes as Anthropic bills them. With A the tokens up to the
    longest live cached breakpoint, B those up to the last 1-hour breakpoint after A
    (else A) and C those up to the last breakpoint: A are read, B - A written for an
    hour, C - B written for five minutes. Prefixes under ``CACHE_MINIMUM`` are not
    cached. The request's breakpoints and usage are logged under ``message_id``."""
    out = _cache_usage(state, req, scope)
    state.cache.log(
        "anthropic",
        {
            "id": message_id,
            "model": req.model,
            "cache_control": [{"path": b.path, "ttl": b.ttl} for b in req.breakpoints],
            "read": out.read,
            "write_5m": out.write_5m,
            "write_1h": out.write_1h,
        },
    )
    return out


def _cache_usage(state: SandboxState, req: MessagesRequest, scope: str) -> CacheUsage:
    total = req.ask.prompt_tokens
    if req.directives.cached is not None:
        return CacheUsage(read=min(req.directives.cached, total))
    bounds = req.segments.bounds
    marks = [(bounds[b.index], b) for b in req.breakpoints if bounds[b.index][1] >= CACHE_MINIMUM]
    cache = state.cache
    read = next(
        (tokens for (chain, tokens), _ in reversed(marks) if cache.hit(scope, chain)), 0
    )
    out = CacheUsage(read=read)
    if marks:
        hour = max((t for (_, t), b in marks if b.ttl == "1h" and t > read), default=read)
        last = max(marks[-1][0][1], hour)
        out = CacheUsage(read, write_5m=max(0, last - hour), write_1h=hour - read)
        for (chain, _), b in marks:
            cache.keep(scope, chain, _TTL_S[b.ttl])
    return out
