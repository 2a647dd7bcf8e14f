"""An Anthropic Messages API request (``POST /v1/messages``) → kanjia's internal chat form
(the way back: ``_messages_render`` and ``_messages_stream``).

The internal form is an OpenAI chat-completions body: every vendor adapter takes one and
returns OpenAI chat JSON or chunks, so one translator per client API reaches every vendor.
Malformed requests raise ``BadRequest`` naming the field (rendered in Anthropic's error
shape by the caller).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from kanjia.errors import BadRequest
from kanjia.ingress._common import check_model, opt_number, positive_int

__all__ = ["MessagesRequest", "Untranslatable", "count_input", "messages_to_chat"]

#: the values of ``speed`` (absent or null: standard)
_SPEEDS = (None, "standard", "fast")
#: ``thinking.budget_tokens`` → OpenAI ``reasoning_effort`` (upper bounds)
_BUDGET_EFFORT = ((4096, "low"), (16384, "medium"))
#: ``output_config.effort`` → ``reasoning_effort`` (OpenAI has no "max")
_EFFORT = {"low": "low", "medium": "medium", "high": "high", "max": "high", "xhigh": "high"}
_CHOICES = frozenset({"auto", "any", "tool", "none"})
_THINKING = ("enabled", "disabled", "adaptive", "between_tools")
#: tool types that are plain client tools (everything else is Anthropic-hosted)
_CLIENT_TOOL_TYPES = (None, "custom")


class Untranslatable(BadRequest):
    """A well-formed request the chat form cannot carry (a PDF, an MCP server, a block type
    only Anthropic knows): refused unless it goes to a vendor that speaks the Messages API."""


class MessagesRequest:
    """A parsed Messages request: the internal chat body plus what rendering needs."""

    __slots__ = ("chat", "dropped_tools", "model", "stream")

    def __init__(self, chat: dict[str, Any], model: str, stream: bool,
                 dropped_tools: list[str]) -> None:
        self.chat = chat
        self.model = model
        self.stream = stream
        self.dropped_tools = dropped_tools


def _marked(part: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    """``part`` with the block's ``cache_control`` (the chat form carries it LiteLLM- and
    OpenRouter-style on parts, messages and tools: an Anthropic upstream keeps it, other
    vendors' adapters drop it)."""
    if block.get("cache_control") is not None:
        part["cache_control"] = block["cache_control"]
    return part


def _collapse(parts: list[dict[str, Any]], sep: str) -> str | list[dict[str, Any]]:
    """Plain text parts as one string; parts with images or cache marks stay parts."""
    if all(p["type"] == "text" and "cache_control" not in p for p in parts):
        return sep.join(p["text"] for p in parts)
    return parts


def _text_blocks(value: Any, where: str) -> str | list[dict[str, Any]]:
    """A string, or an array of text blocks (one string unless cache-marked)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise BadRequest(f"{where}: must be a string or an array of text blocks")
    parts = []
    for j, block in enumerate(value):
        if not isinstance(block, dict) or block.get("type") != "text" \
                or not isinstance(block.get("text"), str):
            raise BadRequest(f"{where}.{j}: must be a text block "
                             "{'type': 'text', 'text': ...}")
        parts.append(_marked({"type": "text", "text": block["text"]}, block))
    return _collapse(parts, "\n\n")


def _image(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise BadRequest(f"{where}.source: Field required")
    kind = source.get("type")
    if kind == "base64":
        media, data = source.get("media_type"), source.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise BadRequest(f"{where}.source: base64 images need 'media_type' and 'data'")
        url = f"data:{media};base64,{data}"
    elif kind == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    elif kind == "file":  # an upload in Anthropic's Files API: only Anthropic has it
        raise Untranslatable(f"{where}.source: an image by file_id can only go to Anthropic "
                             "(send it as base64 or a URL for this model)")
    else:
        raise BadRequest(f"{where}.source.type: must be 'base64', 'url' or 'file'")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result_text(content: Any, where: str) -> str | list[dict[str, Any]]:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content: must be a string or an array of blocks")
    parts: list[dict[str, Any]] = []
    for k, block in enumerate(content):
        if not isinstance(block, dict):
            raise BadRequest(f"{where}.content.{k}: must be an object")
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            parts.append(_image(block, f"{where}.content.{k}"))
        elif kind == "search_result":
            parts.append({"type": "text",
                          "text": _search_result(block, f"{where}.content.{k}")})
        elif kind == "document":
            parts.extend(_document(block, f"{where}.content.{k}"))
        elif isinstance(kind, str):  # tool_reference, browser_state, ...: Anthropic's own
            raise Untranslatable(f"{where}.content.{k}.type: {kind!r} in a tool result can "
                                 "only go to Anthropic")
        else:
            raise BadRequest(f"{where}.content.{k}.type: Field required")
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _document(block: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """A document the chat form can carry: plain text (``source.type`` "text"), or
    content blocks (``source.type`` "content": a string, text and image blocks), with its
    ``title`` and ``context`` first. PDFs, URLs and files only Anthropic can read."""
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    parts: list[dict[str, Any]] = []
    head = "\n".join(str(block[k]) for k in ("title", "context")
                     if isinstance(block.get(k), str) and block[k])
    if head:
        parts.append({"type": "text", "text": head})
    if kind == "text" and isinstance(source, dict) and isinstance(source.get("data"), str):
        parts.append({"type": "text", "text": source["data"]})
    elif kind == "content" and isinstance(source, dict):
        content = source.get("content")
        if isinstance(content, str):
            parts.append({"type": "text", "text": content})
        elif isinstance(content, list):
            for k, inner in enumerate(content):
                if isinstance(inner, dict) and inner.get("type") == "text" \
                        and isinstance(inner.get("text"), str):
                    parts.append({"type": "text", "text": inner["text"]})
                elif isinstance(inner, dict) and inner.get("type") == "image":
                    parts.append(_image(inner, f"{where}.source.content.{k}"))
                else:
                    raise BadRequest(f"{where}.source.content.{k}: must be a text or "
                                     "image block")
        else:
            raise BadRequest(f"{where}.source.content: must be a string or an array of "
                             "blocks")
    else:
        raise Untranslatable(f"{where}.source: only plain-text documents (a text or content "
                             "source) can be translated for this model (no PDF, URL or file "
                             "sources)")
    return parts


def _search_result(block: dict[str, Any], where: str) -> str:
    content = block.get("content")
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content: must be an array of text blocks")
    texts = [b.get("text") for b in content if isinstance(b, dict)]
    head = " ".join(str(block[k]) for k in ("title", "source") if isinstance(block.get(k), str))
    return "\n".join([head, *(t for t in texts if isinstance(t, str))]).strip()


def _user(i: int, content: list[Any], known: set[str], answered: set[str],
          out: list[dict[str, Any]]) -> None:
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        where = f"messages.{i}.content.{j}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise BadRequest(f"{where}: must be an object with a 'type'")
        kind = block["type"]
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise BadRequest(f"{where}.text: must be a string")
            parts.append(_marked({"type": "text", "text": block["text"]}, block))
        elif kind == "image":
            parts.append(_marked(_image(block, where), block))
        elif kind == "tool_result":
            tid = block.get("tool_use_id")
            if not isinstance(tid, str) or not tid:
                raise BadRequest(f"{where}.tool_use_id: Field required")
            if tid not in known:
                raise BadRequest(f"{where}: tool_result references tool_use_id {tid!r}, "
                                 "which no earlier assistant tool_use block has")
            answered.add(tid)
            result = _tool_result_text(block.get("content"), where)
            if isinstance(result, list):  # chat tool messages are text: images follow
                parts.extend(p for p in result if p["type"] == "image_url")
                text = "\n".join(p["text"] for p in result if p["type"] == "text") \
                    or "(the tool returned images, attached in the next message)"
            else:
                text = result
            if block.get("is_error"):
                text = f"Error: {text}" if text else "Error"
            out.append(_marked({"role": "tool", "tool_call_id": tid, "content": text}, block))
        elif kind == "document":
            doc = _document(block, where)
            if doc:
                _marked(doc[-1], block)
            parts.extend(doc)
        elif kind == "search_result":
            parts.append(_marked({"type": "text", "text": _search_result(block, where)}, block))
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise Untranslatable(f"{where}.type: unknown content block type {kind!r}")
    if parts:
        out.append({"role": "user", "content": _collapse(parts, "\n\n")})


def _assistant(i: int, content: list[Any], known: set[str]) -> dict[str, Any]:
    texts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    mark: Any = None
    for j, block in enumerate(content):
        where = f"messages.{i}.content.{j}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise BadRequest(f"{where}: must be an object with a 'type'")
        kind = block["type"]
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise BadRequest(f"{where}.text: must be a string")
            texts.append(_marked({"type": "text", "text": block["text"]}, block))
        elif kind == "tool_use":
            tid, name = block.get("id"), block.get("name")
            if not isinstance(tid, str) or not tid or not isinstance(name, str):
                raise BadRequest(f"{where}: tool_use needs a string 'id' and 'name'")
            args = block.get("input", {})
            if not isinstance(args, dict):
                raise BadRequest(f"{where}.input: must be an object")
            known.add(tid)
            mark = block.get("cache_control", mark)  # message-level: on the last block
            calls.append({"id": tid, "type": "function",
                          "function": {"name": name, "arguments": orjson.dumps(args).decode()}})
        elif kind in ("thinking", "redacted_thinking") or kind == "server_tool_use" \
                or kind.endswith("_tool_result"):
            # thinking signatures mean something to Anthropic only; a server tool ran on
            # Anthropic's side and its result block holds nothing another model can use
            continue
        else:
            raise Untranslatable(f"{where}.type: {kind!r} is not valid in an assistant "
                                 "message")
    text = _collapse(texts, "")
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    if mark is not None:
        message["cache_control"] = mark
    return message


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: Field required (a non-empty array)")
    out: list[dict[str, Any]] = []
    system = body.get("system")
    if system is not None:
        text = _text_blocks(system, "system")
        if text:
            out.append({"role": "system", "content": text})
    known: set[str] = set()
    answered: set[str] = set()
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise BadRequest(f"messages.{i}: must be an object")
        role, content = m.get("role"), m.get("content")
        if role == "system":  # Claude Code's system messages inside messages (a beta)
            out.append({"role": "system", "content": _text_blocks(content, f"messages.{i}"
                                                                  ".content")})
            continue
        if role not in ("user", "assistant"):
            raise BadRequest(f"messages.{i}.role: must be 'user' or 'assistant'")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise BadRequest(f"messages.{i}.content: must be a string or an array of "
                             "content blocks")
        if role == "assistant":
            out.append(_assistant(i, content, known))
        else:
            _user(i, content, known, answered, out)
    return out


def _tools(body: dict[str, Any], chat: dict[str, Any]) -> list[str]:
    tools = body.get("tools")
    dropped: list[str] = []
    if tools is None:
        return dropped
    if not isinstance(tools, list):
        raise BadRequest("tools: must be an array")
    functions = []
    for i, t in enumerate(tools):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise BadRequest(f"tools.{i}.name: Field required")
        if t.get("type") not in _CLIENT_TOOL_TYPES:
            dropped.append(t["name"])  # an Anthropic-hosted tool (web search, bash, ...)
            continue
        schema = t.get("input_schema")
        if not isinstance(schema, dict):
            raise BadRequest(f"tools.{i}.input_schema: Field required (a JSON schema object)")
        fn: dict[str, Any] = {"name": t["name"], "parameters": schema}
        if isinstance(t.get("description"), str):
            fn["description"] = t["description"]
        functions.append(_marked({"type": "function", "function": fn}, t))
    if functions:
        chat["tools"] = functions
    return dropped


def _tool_choice(body: dict[str, Any], chat: dict[str, Any], dropped: list[str]) -> None:
    choice = body.get("tool_choice")
    if choice is None:
        return
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str) \
            or choice["type"] not in _CHOICES:
        raise BadRequest("tool_choice.type: must be one of 'auto', 'any', 'tool', 'none'")
    kind = choice["type"]
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise BadRequest("tool_choice.name: Field required")
        if name in dropped:
            raise Untranslatable(f"tool_choice forces tool {name!r}, a server tool this "
                                 "model cannot run")
        chat["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif "tools" in chat:
        chat["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    if choice.get("disable_parallel_tool_use") is True and "tools" in chat:
        chat["parallel_tool_calls"] = False


def _format(body: dict[str, Any], chat: dict[str, Any]) -> None:
    """``output_config.format`` (structured outputs) → ``response_format``."""
    fmt = (body.get("output_config") or {}).get("format")
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" \
            or not isinstance(fmt.get("schema"), dict):
        raise BadRequest("output_config.format: must be {'type': 'json_schema', 'schema': {...}}")
    chat["response_format"] = {"type": "json_schema",
                               "json_schema": {"name": "output", "schema": fmt["schema"]}}


def _effort(body: dict[str, Any]) -> str | None:
    """The reasoning effort a request asks for (``output_config.effort`` first, else the
    thinking budget's); ``thinking`` is checked either way."""
    config = body.get("output_config")
    if config is not None and not isinstance(config, dict):
        raise BadRequest("output_config: must be an object")
    thinking = body.get("thinking")
    budget = None
    if thinking is not None:
        if not isinstance(thinking, dict) or thinking.get("type") not in _THINKING:
            raise BadRequest(f"thinking.type: must be one of "
                             f"{', '.join(map(repr, _THINKING))}")
        if thinking["type"] == "enabled":  # the only type with a budget to map
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
                raise BadRequest("thinking.budget_tokens: Field required (a positive integer)")
    effort = (config or {}).get("effort")
    if effort is not None:
        if not isinstance(effort, str) or effort not in _EFFORT:
            raise BadRequest(f"output_config.effort: must be one of "
                             f"{', '.join(map(repr, _EFFORT))}")
        return _EFFORT[effort]
    if budget is None:
        return None
    return next((e for limit, e in _BUDGET_EFFORT if budget < limit), "high")


def _auto_cache(body: dict[str, Any], messages: list[dict[str, Any]]) -> None:
    """A top-level ``cache_control`` (Anthropic marks the request's last cacheable block)
    → on the last message, where an Anthropic upstream puts it on the last block."""
    control = body.get("cache_control")
    if control is None or not messages:
        return
    if not isinstance(control, dict):
        raise BadRequest("cache_control: must be an object")
    last = messages[-1]
    content = last.get("content")
    marked = last.get("cache_control") is not None or (isinstance(content, list) and any(
        isinstance(p, dict) and p.get("cache_control") is not None for p in content))
    if not marked:
        last["cache_control"] = control


def messages_to_chat(body: dict[str, Any],
                     has_reasoning: Callable[[str], bool] = lambda _m: False
                     ) -> MessagesRequest:
    """Translate a Messages request body into the internal chat body.

    ``has_reasoning(model)`` says whether the model takes OpenAI's ``reasoning_effort``;
    thinking/effort settings map to it there and are dropped elsewhere."""
    model = check_model(body.get("model"))
    if body.get("max_tokens") == 0 and type(body["max_tokens"]) is int:
        raise Untranslatable("max_tokens: 0 (warming Anthropic's prompt cache without an "
                             "answer) can only go to Anthropic; other models need a positive "
                             "integer")
    max_tokens = positive_int(body.get("max_tokens"), "max_tokens", required=True)
    chat: dict[str, Any] = {"model": model, "messages": _messages(body),
                            "max_tokens": max_tokens}
    _auto_cache(body, chat["messages"])
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise BadRequest("stream: must be a boolean")
    if body.get("speed") not in _SPEEDS:
        raise BadRequest("speed: must be 'standard' or 'fast'")
    for name in ("temperature", "top_p", "top_k"):
        value = opt_number(body.get(name), name)
        if value is not None and name != "top_k":  # OpenAI chat has no top_k
            chat[name] = value
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise BadRequest("stop_sequences: must be an array of strings")
        if stops:
            chat["stop"] = stops
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise BadRequest("metadata: must be an object")
        user = metadata.get("user_id")
        if user is not None and not isinstance(user, str):
            raise BadRequest("metadata.user_id: must be a string")
        if user:
            chat["user"] = user
    if body.get("mcp_servers"):
        raise Untranslatable("mcp_servers: the MCP connector runs on Anthropic's servers; "
                             "this gateway cannot offer its tools to this model")
    dropped = _tools(body, chat)
    _tool_choice(body, chat, dropped)
    effort = _effort(body)
    _format(body, chat)
    if effort is not None and has_reasoning(model):
        chat["reasoning_effort"] = effort
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return MessagesRequest(chat, model, bool(stream), dropped)


#: what Anthropic's count_tokens takes; anything else (sampling parameters, stream,
#: metadata) does not change the count and is ignored, as Anthropic ignores it
_COUNTED = ("model", "messages", "system", "tools", "tool_choice", "thinking",
            "mcp_servers", "output_config", "speed")


def count_input(body: dict[str, Any]) -> dict[str, Any]:
    """The chat body a ``count_tokens`` request stands for (max_tokens not required)."""
    probe = {k: body[k] for k in _COUNTED if k in body}
    probe["max_tokens"] = 1
    return messages_to_chat(probe).chat
