"""Check the fields of a client request that kanjia relies on; everything else passes
through to the vendor untouched. Cheap checks only: this is on the hot path.

What the adapters, the planner and the token counter read is checked here, so that they
never see a malformed shape: roles, content parts, tool calls, tool choice. Bodies nested
deeper than ``MAX_DEPTH`` are refused (orjson writes at most 254 levels, and the vendor
request wraps the client's values in a few more).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import orjson

from kanjia.errors import BadRequest

__all__ = ["MAX_CHOICES", "MAX_DEPTH", "MAX_OUTPUT_TOKENS", "parse_chat", "parse_embeddings",
           "parse_json", "query_date"]

#: the deepest nesting of objects and arrays a request body may have
MAX_DEPTH = 100
#: the largest output limit any request may ask for (a named model's own limit, from the
#: catalog, is checked by the gateway); far above every model's, far below an overflow
MAX_OUTPUT_TOKENS = 1_000_000
#: the most choices (``n``) a request may ask for (OpenAI's own limit)
MAX_CHOICES = 128

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_TOOL_CHOICES = frozenset({"none", "auto", "required"})
_NUMBER = (int, float)
_OPT_STR = (str, type(None))
_ARGUMENTS = (str, dict, type(None))
#: C0 controls, DEL, C1 controls and Unicode line/paragraph separators: never in a model
#: name (it is echoed into the x-kanjia-model header and sent upstream)
_BAD_MODEL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def parse_json(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise BadRequest("request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    if _too_deep(body, MAX_DEPTH):
        raise BadRequest(f"request body is nested more than {MAX_DEPTH} levels deep")
    return body


def _too_deep(value: Any, limit: int) -> bool:
    """True if ``value`` nests objects/arrays more than ``limit`` levels (level by level)."""
    level = [value]
    for _ in range(limit):
        below: list[Any] = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is dict or type(child) is list:
                    below.append(child)
        if not below:
            return False
        level = below
    return True


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("'model' is required and must be a non-empty string")
    if len(model) > 256:
        raise BadRequest("'model' is longer than 256 characters")
    if _BAD_MODEL_CHARS.search(model):
        raise BadRequest("'model' contains invalid characters (control characters or "
                         "line breaks)")
    return model


def _opt(body: dict[str, Any], name: str, types: type | tuple[type, ...], what: str) -> None:
    value = body.get(name)
    if value is not None and (not isinstance(value, types) or (isinstance(value, bool)
                              and bool not in (types if isinstance(types, tuple) else (types,)))):
        raise BadRequest(f"'{name}' must be {what}")


def _content(i: int, content: list[Any]) -> None:
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise BadRequest(f"messages[{i}].content[{j}] must be an object with a 'type'")
        kind = part.get("type")
        if not isinstance(kind, str):
            raise BadRequest(f"messages[{i}].content[{j}].type must be a string")
        text = part.get("text")
        if not isinstance(text, str) and (kind == "text" or text is not None):
            raise BadRequest(f"messages[{i}].content[{j}].text must be a string")
        if kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                raise BadRequest(f"messages[{i}].content[{j}].image_url must be an object "
                                 "with a string 'url'")


def _tool_calls(i: int, calls: Any) -> None:
    if not isinstance(calls, list):
        raise BadRequest(f"messages[{i}].tool_calls must be an array")
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) \
                or not isinstance(call.get("id"), _OPT_STR) \
                or not isinstance(fn.get("arguments"), _ARGUMENTS):
            raise BadRequest(f"messages[{i}].tool_calls[{j}] must be {{'id': ..., 'type': "
                             "'function', 'function': {'name': ..., 'arguments': '...'}}")


def _messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' is required and must be a non-empty array")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise BadRequest(f"messages[{i}] must be an object")
        role = m.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise BadRequest(f"messages[{i}].role must be one of {sorted(_ROLES)}")
        content = m.get("content")
        if content is not None and not isinstance(content, str):
            if not isinstance(content, list):
                raise BadRequest(f"messages[{i}].content must be a string or an array of "
                                 "parts")
            _content(i, content)
        if m.get("tool_calls") is not None:
            _tool_calls(i, m["tool_calls"])
        if not isinstance(m.get("name"), _OPT_STR) \
                or not isinstance(m.get("tool_call_id"), _OPT_STR):
            raise BadRequest(f"messages[{i}].name and .tool_call_id must be strings")


def _tools(body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise BadRequest("'tools' must be an array")
        for i, t in enumerate(tools):
            fn = t.get("function") if isinstance(t, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise BadRequest(f"tools[{i}] must be {{'type': 'function', 'function': "
                                 "{'name': ...}}")
    choice = body.get("tool_choice")
    if choice is None or (isinstance(choice, str) and choice in _TOOL_CHOICES):
        return
    fn = choice.get("function", {}) if isinstance(choice, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name", ""), str):
        raise BadRequest("'tool_choice' must be 'none', 'auto', 'required' or "
                         "{'type': 'function', 'function': {'name': ...}}")


class _Combination(BadRequest):
    code = "invalid_parameter_combination"


def _limits(body: dict[str, Any]) -> None:
    """``max_tokens``/``max_completion_tokens``/``n``: positive, bounded, and at most one of
    the two output limits (as OpenAI: a vendor told one and a budget reserving for the
    other would disagree on what the request may cost)."""
    for name, top in (("max_tokens", MAX_OUTPUT_TOKENS),
                      ("max_completion_tokens", MAX_OUTPUT_TOKENS), ("n", MAX_CHOICES)):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadRequest(f"'{name}' must be a positive integer")
        if value > top:
            raise BadRequest(f"'{name}' must be at most {top}")
    if body.get("max_tokens") is not None and body.get("max_completion_tokens") is not None:
        raise _Combination("Setting 'max_tokens' and 'max_completion_tokens' at the same "
                           "time is not supported.")


def parse_chat(raw: bytes) -> dict[str, Any]:
    body = parse_json(raw)
    _model(body)
    _messages(body.get("messages"))
    _opt(body, "stream", bool, "a boolean")
    _opt(body, "temperature", _NUMBER, "a number")
    _opt(body, "top_p", _NUMBER, "a number")
    _limits(body)
    stop = body.get("stop")
    if stop is not None and not (isinstance(stop, str) or (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop))):
        raise BadRequest("'stop' must be a string or an array of strings")
    _tools(body)
    _opt(body, "response_format", dict, "an object")
    _opt(body, "stream_options", dict, "an object")
    _opt(body, "user", str, "a string")
    _opt(body, "provider", dict, "an object (OpenRouter's provider preferences)")
    return body


def _token_lists(inp: list[Any]) -> bool:
    return all(isinstance(x, list) and all(isinstance(t, int) and not isinstance(t, bool)
                                           for t in x) for x in inp)


def parse_embeddings(raw: bytes) -> dict[str, Any]:
    body = parse_json(raw)
    _model(body)
    inp = body.get("input")
    ok = isinstance(inp, str) or (isinstance(inp, list) and bool(inp) and (
        all(isinstance(x, str) for x in inp)
        or all(isinstance(x, int) and not isinstance(x, bool) for x in inp)
        or _token_lists(inp)))
    if not ok:
        raise BadRequest("'input' must be a string or a non-empty array of strings or tokens")
    return body


def query_date(text: str | None, name: str) -> date | None:
    """A YYYY-MM-DD query parameter (``since``, ``until``); empty means none."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD)") from None
