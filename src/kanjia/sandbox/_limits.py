"""Request limits the vendors document and enforce, so tests see what the vendor would
refuse: a model's output limit and chat requests to an embeddings model (OpenAI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from kanjia.sandbox._json import int_or_none
from kanjia.sandbox._wire import json_response

__all__ = ["chat_refusal", "messages_refusal"]

#: vendor → model → the most completion tokens a request may ask for (OpenAI's model pages)
_OUTPUT_LIMITS: Mapping[str, Mapping[str, int]] = {
    "openai": {"gpt-4o": 16384, "gpt-4o-mini": 16384, "gpt-4.1": 32768,
               "gpt-4.1-mini": 32768},
}
#: Anthropic model → its maximum output tokens (Anthropic's models overview)
_ANTHROPIC_OUTPUT: Mapping[str, int] = {
    "claude-3-opus-20240229": 4096, "claude-3-sonnet-20240229": 4096,
    "claude-3-haiku-20240307": 4096, "claude-3-5-sonnet-20240620": 8192,
    "claude-3-5-haiku-20241022": 8192, "claude-sonnet-4-20250514": 64000,
    "claude-opus-4-20250514": 32000, "claude-sonnet-4-5-20250929": 64000,
    "claude-haiku-4-5-20251001": 64000, "claude-opus-4-5-20251101": 64000,
}
#: vendor → models that only embed (a chat request to one is refused)
_EMBEDDING_ONLY: Mapping[str, frozenset[str]] = {
    "openai": frozenset({"text-embedding-3-small", "text-embedding-3-large",
                         "text-embedding-ada-002"}),
}


def _error(status: int, message: str, param: str | None, code: str | None) -> web.Response:
    return json_response({"error": {"message": message, "type": "invalid_request_error",
                                    "param": param, "code": code}}, status=status)


def chat_refusal(vendor: str, model: str, data: Mapping[str, Any]) -> web.Response | None:
    """The vendor's own refusal of this chat request, or None when it would serve it."""
    if model in _EMBEDDING_ONLY.get(vendor, ()):
        return _error(404, "This is not a chat model and thus not supported in the "
                      "v1/chat/completions endpoint. Did you mean to use v1/completions?",
                      "model", None)
    limit = _OUTPUT_LIMITS.get(vendor, {}).get(model)
    for name in ("max_completion_tokens", "max_tokens"):
        asked = int_or_none(data.get(name))
        if limit is not None and asked is not None and asked > limit:
            return _error(400, f"{name} is too large: {asked}. This model supports at most "
                          f"{limit} completion tokens, whereas you provided {asked}.",
                          name, "invalid_value")
    return None


def messages_refusal(model: str, max_tokens: int | None) -> str | None:
    """Anthropic's message refusing ``max_tokens`` above the model's limit, or None."""
    limit = _ANTHROPIC_OUTPUT.get(model)
    if limit is None or max_tokens is None or max_tokens <= limit:
        return None
    return (f"max_tokens: {max_tokens} > {limit}, which is the maximum allowed number of "
            f"output tokens for {model}")
