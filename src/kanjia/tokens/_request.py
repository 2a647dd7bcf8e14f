"""What a request asks for, read once: its output limit, its number of choices, and every
piece of content it sends besides its messages (tools, response formats, ...).

Budgets, routing, scheduling and usage estimates all read these through here, so that a
reservation and the vendor never disagree on what a request may cost.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

__all__ = ["DEFAULT_OUTPUT_TOKENS", "choices", "embedding_inputs", "extra_content",
           "output_limit"]

#: the output limit assumed for a model whose own limit is unknown (no catalog entry)
DEFAULT_OUTPUT_TOKENS = 4096

#: request fields that carry no content for the model (numbers, flags, ids, options):
#: every other field but ``messages`` is content the vendor may show the model
_NO_CONTENT = frozenset({
    "model", "messages", "stream", "stream_options", "temperature", "top_p", "top_k", "n",
    "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty", "seed",
    "stop", "user", "logprobs", "top_logprobs", "logit_bias", "parallel_tool_calls",
    "service_tier", "store", "reasoning_effort", "modalities", "enable_thinking",
    "thinking_budget", "repetition_penalty", "min_p", "safety_identifier", "prompt_cache_key",
    "encoding_format", "dimensions", "input",
})


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def output_limit(body: Mapping[str, Any]) -> int | None:
    """The output limit a request sets, per choice (``max_completion_tokens``, else
    ``max_tokens``); None when it sets none. Validation lets at most one of the two
    through, so this is also the limit every adapter forwards."""
    value = _int(body.get("max_completion_tokens"))
    return value if value is not None else _int(body.get("max_tokens"))


def choices(body: Mapping[str, Any]) -> int:
    """How many choices (``n``) a request asks for."""
    return _int(body.get("n")) or 1


def extra_content(body: Mapping[str, Any]) -> Iterator[str]:
    """The JSON text of every field sent beside the messages that may reach the model:
    ``tools``, ``functions``, ``response_format``, ``tool_choice``, ``prediction``, and any
    field kanjia does not know (it passes through to the vendor)."""
    for name, value in body.items():
        if name in _NO_CONTENT or value is None or isinstance(value, bool | int | float):
            continue
        if isinstance(value, str):
            yield value
            continue
        try:
            yield orjson.dumps(value).decode()
        except (TypeError, orjson.JSONEncodeError):  # the adapter refuses it later
            continue


def embedding_inputs(value: Any) -> tuple[list[str], int]:
    """An embeddings ``input``: (its texts, the number of tokens given as token ids)."""
    if isinstance(value, str):
        return [value], 0
    if not isinstance(value, list):
        return [], 0
    texts = [x for x in value if isinstance(x, str)]
    ids = sum(1 for x in value if isinstance(x, int) and not isinstance(x, bool))
    ids += sum(len(x) for x in value if isinstance(x, list))
    return texts, ids
