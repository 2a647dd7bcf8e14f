"""The tokenizer-free token estimate: one rule for every count made without a tokenizer.

kanjia counts tokens three ways, all from ``kanjia.tokens``:

- ``rough_prompt_tokens(messages)``: before any model is chosen (the planner ranks
  candidates by expected cost), from the messages alone;
- ``TokenCounter.bound_request_tokens``: what admission reserves for a request's input,
  the larger of the model's tokenizer count and this rule's;
- ``TokenCounter.input_tokens`` / ``count_text_tokens``: the model's tokenizer, for a
  usage the vendor did not report (recorded as an estimate).

The two tokenizer-free counts share ``rough_tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MESSAGE_TOKENS", "rough_prompt_tokens", "rough_tokens"]

#: the chat template's overhead per message assumed when no model is known
MESSAGE_TOKENS = 4


def rough_tokens(text: str) -> int:
    """A tokenizer-free count that vendors' own counts rarely exceed: one token per
    non-ASCII character (CJK), one per four ASCII characters."""
    if not text:
        return 0
    if text.isascii():
        return (len(text) + 3) // 4
    wide = len(text) - len(text.encode("ascii", "ignore"))  # the non-ASCII characters
    return wide + (len(text) - wide + 3) // 4


def rough_prompt_tokens(messages: Any) -> int:
    """A fast, slightly generous estimate of a chat prompt's tokens for any model: each
    message's text by ``rough_tokens`` plus ``MESSAGE_TOKENS``."""
    if not isinstance(messages, list):
        return 0
    total = 0
    for m in messages:
        total += MESSAGE_TOKENS
        content = m.get("content") if isinstance(m, Mapping) else None
        if isinstance(content, list):
            content = " ".join(t for p in content if isinstance(p, Mapping)
                               and isinstance(t := p.get("text"), str))
        if isinstance(content, str):
            total += rough_tokens(content)
    return total
