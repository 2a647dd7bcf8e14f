"""Offline token counting: the right tokenizer per model family, never the network.

    counter = TokenCounter()            # the caller keeps it; tokenizers load lazily
    counter.count_text_tokens("qwen", "qwen-max", "你好")
    counter.count_prompt_tokens("openai", "gpt-4o", [{"role": "user", "content": "hi"}])

See ``_families`` for which tokenizer counts which model and what is an estimate, and
``_estimate`` for the one tokenizer-free rule (``rough_tokens``, ``rough_prompt_tokens``).
"""

from kanjia.tokens._counter import IMAGE_TOKENS_HIGH, IMAGE_TOKENS_LOW, TokenCounter
from kanjia.tokens._estimate import MESSAGE_TOKENS, rough_prompt_tokens, rough_tokens
from kanjia.tokens._families import FAMILIES, Family, family_for
from kanjia.tokens._request import (
    DEFAULT_OUTPUT_TOKENS,
    choices,
    embedding_inputs,
    extra_content,
    output_limit,
)

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "FAMILIES",
    "IMAGE_TOKENS_HIGH",
    "IMAGE_TOKENS_LOW",
    "MESSAGE_TOKENS",
    "Family",
    "TokenCounter",
    "choices",
    "embedding_inputs",
    "extra_content",
    "family_for",
    "output_limit",
    "rough_prompt_tokens",
    "rough_tokens",
]
