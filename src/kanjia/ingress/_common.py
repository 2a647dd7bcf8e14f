"""Small helpers shared by the Messages and Responses translators."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from kanjia.errors import BadRequest

__all__ = ["cache_write_of", "check_model", "finish_to_stop", "new_id", "opt_number",
           "positive_int", "reasoning_of", "sse_payloads", "stream_error", "typed_events",
           "usage_numbers"]

#: control characters and line separators never belong in a model name (it becomes a header)
_BAD_MODEL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
         "function_call": "tool_use", "content_filter": "refusal"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def check_model(model: Any) -> str:
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("model: Field required (a non-empty string)")
    if len(model) > 256 or _BAD_MODEL_CHARS.search(model):
        raise BadRequest("model: too long or contains control characters")
    return model


def positive_int(value: Any, name: str, *, required: bool = False) -> int | None:
    if value is None:
        if required:
            raise BadRequest(f"{name}: Field required")
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest(f"{name}: must be a positive integer")
    return value


def opt_number(value: Any, name: str) -> float | int | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BadRequest(f"{name}: must be a number")
    return value


def finish_to_stop(finish: Any) -> str:
    """An OpenAI ``finish_reason`` → an Anthropic ``stop_reason``."""
    return _STOP.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"


def usage_numbers(usage: Any) -> tuple[int, int, int]:
    """(prompt tokens incl. cached, cached prompt tokens, output tokens) of chat usage."""
    if not isinstance(usage, dict):
        return 0, 0, 0
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return (_int(usage.get("prompt_tokens")), _int(cached), _int(usage.get("completion_tokens")))


def reasoning_of(usage: Any) -> int:
    details = usage.get("completion_tokens_details") if isinstance(usage, dict) else None
    return _int(details.get("reasoning_tokens")) if isinstance(details, dict) else 0


def cache_write_of(usage: Any) -> int:
    """Prompt tokens written to the vendor's cache, wherever the chat usage reports them."""
    if not isinstance(usage, dict):
        return 0
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict):
        for name in ("cache_write_tokens", "cache_creation_tokens",
                     "cache_creation_input_tokens"):
            if details.get(name):
                return _int(details[name])
    return _int(usage.get("cache_creation_input_tokens"))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def sse_payloads(frames: bytes) -> list[bytes]:
    """The ``data:`` payloads of a batch of SSE frames as the gateway writes them."""
    out = []
    for frame in frames.split(b"\n\n"):
        for line in frame.split(b"\n"):
            if line.startswith(b"data:"):
                out.append(line[5:].strip())
    return out


#: the OpenAI-shaped error codes a failed stream carries → Anthropic error types
_STREAM_ERRORS = {"rate_limit_exceeded": "rate_limit_error", "overloaded": "overloaded_error",
                  "no_deployment_available": "overloaded_error", "timeout": "timeout_error"}


def stream_error(body: dict[str, Any]) -> tuple[str, str, str]:
    """(message, OpenAI code, Anthropic error type) of an in-stream ``{"error": ...}``."""
    err = body.get("error")
    err = err if isinstance(err, dict) else {}
    message = str(err.get("message") or "the upstream stream failed")
    code = str(err.get("code") or "upstream_error")
    return message, code, _STREAM_ERRORS.get(code, "api_error")


def typed_events(payloads: Iterable[bytes]) -> Iterator[tuple[bytes, dict[str, Any], str | None]]:
    """A native stream's payloads as (raw, object, its ``type``, None when it has none):
    what is not a JSON object, or whose ``type`` holds a control character, is skipped.
    An untyped object with an ``error`` is the gateway's own error frame (a broken
    stream)."""
    for payload in payloads:
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            continue
        if isinstance(body, dict):
            kind = body.get("type")
            if isinstance(kind, str) and not kind.isprintable():
                continue  # becomes the SSE event name: a CR or LF would forge events
            yield payload, body, kind if isinstance(kind, str) else None
