"""The cache key of a chat request: everything that changes the answer, normalized.

Two requests share a key when a vendor would see the same question: the same model (the
resolved ``vendor/model``, or the route name, with any ``:floor``/``:nitro`` suffix),
messages, tools and output-changing parameters. What does not change the answer is left
out (``user``, ``stream``, ``stream_options``, ``metadata``, ``store``, ``service_tier``);
spellings that mean the same are made equal (``stop: "x"`` and ``["x"]``,
``max_completion_tokens`` and ``max_tokens``, ``1`` and ``1.0``, a content array of one
plain text part and the text itself). The key is scoped: per tenant, or global.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["IGNORED", "cache_key", "normalized"]

#: request fields that do not change the answer
IGNORED = frozenset({"model", "user", "stream", "stream_options", "metadata", "store",
                     "service_tier", "provider"})


def _number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _content(content: Any) -> Any:
    if isinstance(content, list) and len(content) == 1:
        part = content[0]
        if isinstance(part, dict) and part.get("type") == "text" \
                and set(part) <= {"type", "text", "cache_control"}:
            return part.get("text")
    if isinstance(content, list):  # cache_control marks change the price, not the answer
        return [{k: v for k, v in p.items() if k != "cache_control"} if isinstance(p, dict)
                else p for p in content]
    return content


def _message(m: Any) -> Any:
    if not isinstance(m, dict):
        return m
    out = {k: v for k, v in m.items() if k != "cache_control" and v is not None}
    if "content" in out:
        out["content"] = _content(out["content"])
    return out


def normalized(model: str, body: Mapping[str, Any],
               controls: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The request as the cache sees it."""
    out: dict[str, Any] = {"model": model}
    for name, value in body.items():
        if name in IGNORED or value is None:
            continue
        out[name] = _number(value)
    if "max_completion_tokens" in out:
        out.setdefault("max_tokens", out.pop("max_completion_tokens"))
        out.pop("max_completion_tokens", None)
    if isinstance(out.get("stop"), str):
        out["stop"] = [out["stop"]]
    if out.get("n") == 1:
        del out["n"]
    if isinstance(out.get("messages"), list):
        out["messages"] = [_message(m) for m in out["messages"]]
    if isinstance(out.get("tools"), list):
        out["tools"] = [{k: v for k, v in t.items() if k != "cache_control"}
                        if isinstance(t, dict) else t for t in out["tools"]]
    if controls:
        out["provider"] = dict(controls)
    return out


def cache_key(scope: str, model: str, body: Mapping[str, Any],
              controls: Mapping[str, Any] | None = None) -> str:
    """A hex digest naming the answer to ``body`` in ``scope`` (a tenant, or "*")."""
    text = orjson.dumps(normalized(model, body, controls),
                        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    h = hashlib.sha256(scope.encode() + b"\0" + text)
    return h.hexdigest()
