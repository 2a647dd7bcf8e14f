"""Deterministic filler text, one piece per token.

Two precomputed cycles of token pieces (English words, Chinese characters) are
built once at import as immutable tuples; a reply of ``n`` tokens is a slice of
a cycle starting at an offset taken from the prompt's hash, so the same prompt
always gets the same reply and producing it costs one slice and one join.
"""

from __future__ import annotations

import random

__all__ = ["CYCLE", "filler_pieces", "json_pieces"]

_EN_TEXT = (
    "the price of every token keeps falling as vendors compete for developers and "
    "cheaper models now answer most everyday questions well enough while larger "
    "models still win on hard reasoning so a careful buyer routes each request to "
    "the least expensive model that can handle it and keeps a fallback ready when "
    "a vendor is busy slow or out of credit this saves money without hurting "
    "quality for the people who use the product every day and it shows clearly "
    "who gains from the price war between large model providers in china and abroad "
    "latency matters too because users notice a slow first token more than a long "
    "answer caching repeated prompts lowers the bill again since cached input costs "
    "a fraction of fresh input tokens"
)

_ZH_TEXT = (
    "大模型价格战让推理服务越来越便宜开发者可以用更低的成本完成日常任务"
    "简单的问题交给小模型复杂的推理留给大模型这样既省钱又不影响质量"
    "当某个厂商繁忙或者余额不足时网关会自动切换到备用模型保证服务稳定"
    "缓存重复的提示词还能进一步降低费用因为命中缓存的输入只按很低的价格计费"
    "用户最在意首个字出现的速度所以延迟和价格同样重要"
)

_ZH_PUNCT = ("，", "。")

#: length of each precomputed cycle, in tokens
CYCLE = 4096


def _english_cycle(rng: random.Random) -> tuple[str, ...]:
    vocabulary = _EN_TEXT.split()
    pieces: list[str] = []
    while len(pieces) < CYCLE:
        length = rng.randint(6, 16)
        words = [rng.choice(vocabulary) for _ in range(length)]
        words[0] = words[0].capitalize()
        words[-1] += "."
        pieces.extend(" " + w for w in words)
    return tuple(pieces[:CYCLE])


def _chinese_cycle(rng: random.Random) -> tuple[str, ...]:
    pieces: list[str] = []
    while len(pieces) < CYCLE:
        start = rng.randrange(len(_ZH_TEXT) - 24)
        pieces.extend(_ZH_TEXT[start : start + rng.randint(8, 24)])
        pieces.append(_ZH_PUNCT[rng.random() < 0.4])
    return tuple(pieces[:CYCLE])


def _cycles(seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Both cycles, each doubled so any window of up to CYCLE pieces is one slice."""
    rng = random.Random(seed)
    return _english_cycle(rng) * 2, _chinese_cycle(rng) * 2


_EN, _ZH = _cycles(0x6B616E6A)


def filler_pieces(n: int, offset: int, cjk: bool) -> list[str]:
    """``n`` token pieces of filler; joined they read as text."""
    if n <= 0:
        return []
    cycle = _ZH if cjk else _EN
    start = offset % CYCLE
    if n <= CYCLE:
        pieces = list(cycle[start : start + n])
    else:
        whole, rest = divmod(n, CYCLE)
        pieces = list(cycle[start : start + CYCLE]) * whole + list(cycle[start : start + rest])
    if not cjk:
        pieces[0] = pieces[0].lstrip().capitalize()
    return pieces


def json_pieces(n: int, offset: int, cjk: bool) -> list[str]:
    """``n`` token pieces that join into one valid JSON object."""
    if n < 3:
        return ["{}"]
    words = filler_pieces(n - 2, offset, cjk)
    return ['{"answer": "', *words, '"}']
