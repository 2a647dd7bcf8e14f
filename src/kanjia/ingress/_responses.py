"""An OpenAI Responses API request (``POST /v1/responses``) → kanjia's internal chat form.

A request becomes one chat body: ``instructions`` → a system message, the stored
conversation of ``previous_response_id`` (if any), then ``input``'s items (messages,
``function_call`` → an assistant tool call, ``function_call_output`` → a tool message;
reasoning items are dropped: encrypted reasoning means nothing to another model). The
chat completion becomes a ``response`` object in ``_responses_render`` (streams:
``_responses_stream``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from kanjia.errors import BadRequest
from kanjia.ingress._common import check_model, new_id, opt_number, positive_int

__all__ = ["ModelHints", "ResponsesRequest", "responses_to_chat"]

_CHOICE_MODES = frozenset({"none", "auto", "required"})
_EFFORTS = frozenset({"minimal", "low", "medium", "high", "none", "xhigh"})
_ROLES = frozenset({"user", "assistant", "system", "developer"})
#: the parameters a custom (freeform) tool is offered with
_CUSTOM_SCHEMA = {"type": "object", "properties": {"input": {
    "type": "string", "description": "The tool's whole input, as free text."}},
    "required": ["input"]}
#: output items of tools OpenAI ran itself: nothing another model can use (dropped)
_HOSTED_CALLS = frozenset({"web_search_call", "file_search_call", "code_interpreter_call",
                           "image_generation_call", "mcp_call", "mcp_list_tools",
                           "mcp_approval_request", "mcp_approval_response"})
#: request fields kanjia refuses rather than silently ignore (they change the meaning)
_REFUSED = {"background": "background mode", "conversation": "conversations",
            "prompt": "stored prompt templates"}


_ID_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco",
              "custom_tool_call": "ctc", "custom_tool_call_output": "ctco", "reasoning": "rs"}


@dataclass(frozen=True, slots=True)
class ModelHints:
    """What the gateway knows of a model name before routing (none for a route)."""

    reasoning: bool = False        # takes ``reasoning_effort``
    completion_tokens: bool = False  # wants ``max_completion_tokens`` (OpenAI)


@dataclass(slots=True)
class ResponsesRequest:
    chat: dict[str, Any]
    model: str
    stream: bool
    store: bool
    #: the conversation to store after this turn (without ``instructions``)
    history: list[dict[str, Any]]
    #: the input items as given (ids added), for ``GET .../input_items``
    input_items: list[dict[str, Any]]
    dropped_tools: list[str]
    echo: dict[str, Any] = field(default_factory=dict)  # fields echoed into the response
    #: names of custom (freeform) tools, offered to the model as functions of one string
    custom: frozenset[str] = frozenset()


def _text_parts(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest(f"{where}: must be a string or an array of content parts")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise BadRequest(f"{where}[{j}]: must be an object with a 'type'")
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            if not isinstance(part.get("text"), str):
                raise BadRequest(f"{where}[{j}].text: must be a string")
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "refusal":
            parts.append({"type": "text", "text": str(part.get("refusal") or "")})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise BadRequest(f"{where}[{j}].image_url: must be a URL or data URL "
                                 "(file_id images are not supported)")
            image: dict[str, Any] = {"url": url}
            if isinstance(part.get("detail"), str) and part["detail"] != "auto":
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise BadRequest(f"{where}[{j}].type: content part {kind!r} is not supported")
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _output_text(value: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(value, str):
        return value
    return _text_parts(value, where)


class _Builder:
    """Accumulates chat messages from input items, checking tool-call references."""

    def __init__(self, history: list[dict[str, Any]]) -> None:
        self.messages: list[dict[str, Any]] = []
        self._images: list[dict[str, Any]] = []
        self.known: set[str] = {c["id"] for m in history for c in m.get("tool_calls") or ()
                                if isinstance(c, dict) and isinstance(c.get("id"), str)}

    def flush(self) -> None:
        """Images returned by tools, as one user message after the tool messages."""
        if self._images:
            self.messages.append({"role": "user", "content": self._images})
            self._images = []

    def item(self, i: int, item: Any) -> dict[str, Any]:
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where}: must be an object")
        kind = item.get("type", "message")
        if not isinstance(kind, str):
            raise BadRequest(f"{where}.type: must be a string")
        if not kind.endswith("_output"):
            self.flush()
        if kind == "message":
            role = item.get("role")
            if not isinstance(role, str) or role not in _ROLES:
                raise BadRequest(f"{where}.role: must be one of {sorted(_ROLES)}")
            if "content" not in item:
                raise BadRequest(f"{where}.content: Field required")
            content = _text_parts(item["content"], f"{where}.content")
            if role == "assistant" and not isinstance(content, str):
                content = "".join(p.get("text", "") for p in content)
            self.messages.append({"role": role, "content": content})
        elif kind in ("function_call", "custom_tool_call"):
            call_id, name = item.get("call_id"), item.get("name")
            if not isinstance(call_id, str) or not call_id or not isinstance(name, str):
                raise BadRequest(f"{where}: a {kind} needs string 'call_id' and 'name'")
            if kind == "custom_tool_call":
                if not isinstance(item.get("input"), str):
                    raise BadRequest(f"{where}.input: must be a string")
                args = orjson.dumps({"input": item["input"]}).decode()
            else:
                args = item.get("arguments", "")
            if not isinstance(args, str):
                raise BadRequest(f"{where}.arguments: must be a string of JSON")
            self.known.add(call_id)
            call = {"id": call_id, "type": "function",
                    "function": {"name": name, "arguments": args or "{}"}}
            last = self.messages[-1] if self.messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                self.messages.append({"role": "assistant", "content": None,
                                      "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise BadRequest(f"{where}.call_id: Field required")
            if call_id not in self.known:
                raise BadRequest(f"{where}: {kind} references call_id "
                                 f"{call_id!r}, which no function_call in the conversation has")
            if "output" not in item:
                raise BadRequest(f"{where}.output: Field required")
            result = _output_text(item["output"], f"{where}.output")
            if isinstance(result, list):  # chat tool messages are text: images follow
                self._images.extend(p for p in result if p["type"] == "image_url")
                result = "\n".join(p["text"] for p in result if p["type"] == "text") \
                    or "(the tool returned images, attached in the next message)"
            self.messages.append({"role": "tool", "tool_call_id": call_id, "content": result})
        elif kind == "reasoning" or kind in _HOSTED_CALLS:
            pass  # encrypted reasoning and hosted tools' results mean nothing to another model
        else:
            raise BadRequest(f"{where}.type: input item type {kind!r} is not supported "
                             "(message, function_call, function_call_output, "
                             "custom_tool_call, custom_tool_call_output, reasoning)")
        out = dict(item)
        out.setdefault("type", kind)
        if kind == "message" and isinstance(out.get("content"), str):
            part = "output_text" if out.get("role") == "assistant" else "input_text"
            out["content"] = [{"type": part, "text": out["content"]}]
        if "id" not in out:
            out["id"] = new_id(_ID_PREFIX.get(kind, "item"))
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
        if not isinstance(t, dict) or not isinstance(t.get("type"), str):
            raise BadRequest(f"tools[{i}].type: Field required")
        if t["type"] == "custom" and isinstance(t.get("name"), str) and t["name"]:
            # a freeform tool (Codex's apply_patch): a function of one string, "input"
            fn_custom: dict[str, Any] = {"name": t["name"], "parameters": _CUSTOM_SCHEMA}
            if isinstance(t.get("description"), str):
                fn_custom["description"] = t["description"]
            functions.append({"type": "function", "function": fn_custom})
            continue
        if t["type"] != "function":  # hosted or unknown: this gateway cannot run it
            dropped.append(t["name"] if isinstance(t.get("name"), str) else t["type"])
            continue
        if not isinstance(t.get("name"), str) or not t["name"]:
            raise BadRequest(f"tools[{i}].name: Field required")
        fn: dict[str, Any] = {"name": t["name"]}
        if isinstance(t.get("description"), str):
            fn["description"] = t["description"]
        params = t.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise BadRequest(f"tools[{i}].parameters: must be a JSON schema object")
        fn["parameters"] = params or {"type": "object", "properties": {}}
        if isinstance(t.get("strict"), bool):
            fn["strict"] = t["strict"]
        functions.append({"type": "function", "function": fn})
    if functions:
        chat["tools"] = functions
    return dropped


def _tool_choice(body: dict[str, Any], chat: dict[str, Any], dropped: list[str]) -> None:
    choice = body.get("tool_choice")
    if choice is None:
        return
    if isinstance(choice, str):
        if choice not in _CHOICE_MODES:
            raise BadRequest("tool_choice: must be 'none', 'auto', 'required' or an object")
        if "tools" in chat:
            chat["tool_choice"] = choice
        return
    if not isinstance(choice, dict):
        raise BadRequest("tool_choice: must be a string or an object")
    kind = choice.get("type")
    if kind in ("function", "custom"):
        name = choice.get("name")
        if not isinstance(name, str):
            raise BadRequest("tool_choice.name: Field required")
        chat["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif kind == "allowed_tools":
        mode = choice.get("mode", "auto")
        if "tools" in chat:
            chat["tool_choice"] = mode if isinstance(mode, str) and mode in _CHOICE_MODES \
                else "auto"
    else:
        name = choice.get("name") or kind
        raise BadRequest(f"tool_choice forces the {name!r} tool, which this gateway cannot "
                         f"run for this model (offered tools dropped: "
                         f"{', '.join(dropped) or 'none'})")


def _text_format(body: dict[str, Any], chat: dict[str, Any]) -> None:
    text = body.get("text")
    if text is None:
        return
    if not isinstance(text, dict):
        raise BadRequest("text: must be an object")
    fmt = text.get("format")
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object",
                                                            "json_schema"):
        raise BadRequest("text.format.type: must be 'text', 'json_object' or 'json_schema'")
    if fmt["type"] == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif fmt["type"] == "json_schema":
        if not isinstance(fmt.get("schema"), dict) or not isinstance(fmt.get("name"), str):
            raise BadRequest("text.format: json_schema needs a string 'name' and a 'schema' "
                             "object")
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}


def _input(body: dict[str, Any], builder: _Builder) -> list[dict[str, Any]]:
    value = body.get("input")
    if value is None:
        raise BadRequest("input: Field required")
    if isinstance(value, str):
        item = {"type": "message", "role": "user", "content": value}
        return [builder.item(0, item)]
    if not isinstance(value, list) or not value:
        raise BadRequest("input: must be a string or a non-empty array of items")
    items = [builder.item(i, item) for i, item in enumerate(value)]
    builder.flush()
    return items


def responses_to_chat(body: dict[str, Any], history: list[dict[str, Any]],
                      hints: Callable[[str], ModelHints] = lambda _m: ModelHints()
                      ) -> ResponsesRequest:
    """Translate a Responses request (with the stored ``history`` of its
    ``previous_response_id``, already looked up) into the internal chat body."""
    model = check_model(body.get("model"))
    for name, what in _REFUSED.items():
        if body.get(name):
            raise BadRequest(f"{name}: {what} are not supported by this gateway")
    hint = hints(model)
    builder = _Builder(history)
    items = _input(body, builder)
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise BadRequest("instructions: must be a string")
        if instructions:
            messages.append({"role": "system", "content": instructions})
    turn = list(history) + builder.messages
    messages.extend(turn)
    chat: dict[str, Any] = {"model": model, "messages": messages}
    limit = positive_int(body.get("max_output_tokens"), "max_output_tokens")
    if limit is not None:
        chat["max_completion_tokens" if hint.completion_tokens else "max_tokens"] = limit
    for name in ("temperature", "top_p"):
        value = opt_number(body.get(name), name)
        if value is not None:
            chat[name] = value
    for name in ("stream", "store", "parallel_tool_calls"):
        if body.get(name) is not None and not isinstance(body[name], bool):
            raise BadRequest(f"{name}: must be a boolean")
    dropped = _tools(body, chat)
    _tool_choice(body, chat, dropped)
    if body.get("parallel_tool_calls") is not None and "tools" in chat:
        chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    _text_format(body, chat)
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise BadRequest("reasoning: must be an object")
        effort = reasoning.get("effort")
        if effort is not None and (not isinstance(effort, str) or effort not in _EFFORTS):
            raise BadRequest(f"reasoning.effort: must be one of {sorted(_EFFORTS)}")
        if effort and hint.reasoning:
            chat["reasoning_effort"] = effort
    for name in ("user", "safety_identifier"):
        if isinstance(body.get(name), str) and body[name]:
            chat["user"] = body[name]
            break
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadRequest("metadata: must be an object")
    tier = body.get("service_tier")
    if tier is not None and (not isinstance(tier, str) or not tier):
        raise BadRequest("service_tier: must be a string ('auto', 'default', 'flex', "
                         "'priority', ...)")
    stream = bool(body.get("stream"))
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    echo = {"instructions": instructions, "max_output_tokens": limit,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": (reasoning or {}).get("effort"), "summary": None},
            "temperature": body.get("temperature"), "top_p": body.get("top_p"),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
            "metadata": metadata or {}, "user": body.get("user"),
            "store": body.get("store", True) is not False, "truncation": "disabled"}
    custom = frozenset(t["name"] for t in body.get("tools") or ()
                       if isinstance(t, dict) and t.get("type") == "custom")
    return ResponsesRequest(chat, model, stream, body.get("store", True) is not False,
                            turn, items, dropped, echo, custom)
