"""Tool calls: example arguments built from a function's JSON schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["ToolCall", "example_args", "split_args"]

_MAX_DEPTH = 6


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    args: dict[str, Any]

    @property
    def args_json(self) -> str:
        return orjson.dumps(self.args).decode()


def example_args(schema: Any) -> dict[str, Any]:
    """An object satisfying ``schema``'s required properties (all of them when
    nothing is marked required): strings "example", numbers 1, booleans true,
    enums their first value."""
    value = _example(schema, 0)
    return value if isinstance(value, dict) else {}


def _example(schema: Any, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return "example"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return _example(options[0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    kind = kind.lower() if isinstance(kind, str) else ("object" if "properties" in schema else "")
    if kind == "object":
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        required = schema.get("required")
        names = [n for n in required if n in props] if isinstance(required, list) else []
        return {name: _example(props[name], depth + 1) for name in names or props}
    if kind == "array":
        return [_example(schema.get("items"), depth + 1)]
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "example"


def split_args(args_json: str, parts: int = 4) -> list[str]:
    """The argument string cut into up to ``parts`` pieces, as streams deliver it."""
    if not args_json:
        return [""]
    size = max(1, -(-len(args_json) // parts))
    return [args_json[i : i + size] for i in range(0, len(args_json), size)]
