"""One token estimator: the planner, admission and the gateway's settlement all count
through ``kanjia.tokens``."""

from __future__ import annotations

import re
from pathlib import Path

import kanjia
from kanjia.tokens import MESSAGE_TOKENS, TokenCounter, rough_prompt_tokens, rough_tokens

PACKAGE = Path(kanjia.__file__).parent


def test_rough_prompt_tokens_counts_every_message_with_the_one_rule() -> None:
    msgs = [{"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "你好"},
                                         {"type": "text", "text": "hello there"}]}]
    assert rough_prompt_tokens(msgs) == (2 * MESSAGE_TOKENS + rough_tokens("be brief")
                                         + rough_tokens("你好 hello there"))
    assert rough_prompt_tokens([{"role": "user", "content": "abcdefgh"}]) == 4 + 2
    assert rough_prompt_tokens([{"role": "user", "content": "你好世界"}]) == 4 + 4
    assert rough_prompt_tokens(None) == 0 and rough_prompt_tokens([]) == 0


def test_input_tokens_counts_chat_and_embeddings() -> None:
    counter = TokenCounter()
    chat = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
    assert counter.input_tokens("openai", "gpt-4o", chat) == \
        counter.count_request_tokens("openai", "gpt-4o", chat)
    emb = {"model": "m", "input": ["hello", "world"]}
    assert counter.input_tokens("openai", "gpt-4o", emb, "embeddings") == \
        counter.count_embedding_tokens("openai", "gpt-4o", emb["input"])


def test_no_estimator_outside_tokens() -> None:
    """No module but ``kanjia.tokens`` (and the sandbox, the independent oracle) defines
    a token estimate of its own."""
    pattern = re.compile(r"^def \w*(?:rough|estimate)\w*tokens\w*\(", re.M)
    found = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                   if p.relative_to(PACKAGE).parts[0] not in ("tokens", "sandbox", "lab")
                   and pattern.search(p.read_text(encoding="utf-8")))
    assert found == []


def test_rough_tokens_counts_each_non_ascii_character_as_one_token() -> None:
    import random

    from kanjia.tokens import rough_tokens

    rng = random.Random(7)
    alphabet = "abc xyz,.!" + "价格战谁会受益" + "é ü" + "😀" + "\u0085\u00a0"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))
        wide = sum(1 for ch in text if ord(ch) > 127)
        assert rough_tokens(text) == (wide + (len(text) - wide + 3) // 4 if text else 0)
