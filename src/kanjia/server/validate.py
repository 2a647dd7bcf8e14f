"""Check the fields of a client request that kanjia relies on; everything else passes
through to the vendor untouched. Cheap checks only: this is on the hot path."""

from __future__ import annotations

from typing import Any

import orjson

from kanjia.errors import BadRequest

__all__ = ["parse_chat", "parse_embeddings", "parse_json"]

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_NUMBER = (int, float)


def parse_json(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise BadRequest("request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("'model' is required and must be a non-empty string")
    if len(model) > 256 or any(c in model for c in "\r\n\x00"):
        raise BadRequest("'model' contains invalid characters")
    return model


def _opt(body: dict[str, Any], name: str, types: type | tuple[type, ...], what: str) -> None:
    value = body.get(name)
    if value is not None and (not isinstance(value, types) or (isinstance(value, bool)
                              and bool not in (types if isinstance(types, tuple) else (types,)))):
        raise BadRequest(f"'{name}' must be {what}")


def parse_chat(raw: bytes) -> dict[str, Any]:
    body = parse_json(raw)
    _model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' is required and must be a non-empty array")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise BadRequest(f"messages[{i}] must be an object")
        role = m.get("role")
        if role not in _ROLES:
            raise BadRequest(f"messages[{i}].role must be one of {sorted(_ROLES)}")
        content = m.get("content")
        if content is not None and not isinstance(content, str | list):
            raise BadRequest(f"messages[{i}].content must be a string or an array of parts")
    _opt(body, "stream", bool, "a boolean")
    _opt(body, "temperature", _NUMBER, "a number")
    _opt(body, "top_p", _NUMBER, "a number")
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 1):
            raise BadRequest(f"'{name}' must be a positive integer")
    if isinstance(body.get("n"), int) and body["n"] > 128:
        raise BadRequest("'n' must be at most 128")
    stop = body.get("stop")
    if stop is not None and not (isinstance(stop, str) or (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop))):
        raise BadRequest("'stop' must be a string or an array of strings")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise BadRequest("'tools' must be an array")
        for i, t in enumerate(tools):
            fn = t.get("function") if isinstance(t, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise BadRequest(f"tools[{i}] must be {{'type': 'function', 'function': "
                                 "{'name': ...}}")
    _opt(body, "response_format", dict, "an object")
    _opt(body, "stream_options", dict, "an object")
    _opt(body, "user", str, "a string")
    return body


def parse_embeddings(raw: bytes) -> dict[str, Any]:
    body = parse_json(raw)
    _model(body)
    inp = body.get("input")
    ok = isinstance(inp, str) or (isinstance(inp, list) and inp and (
        all(isinstance(x, str) for x in inp) or all(isinstance(x, int) for x in inp)
        or all(isinstance(x, list) for x in inp)))
    if not ok:
        raise BadRequest("'input' must be a string or a non-empty array of strings or tokens")
    return body
