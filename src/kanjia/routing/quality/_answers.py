"""What can be read off an answer without knowing the task: a short answer key (a choice
letter, a final number) to compare answers by, and a word-overlap similarity for the rest."""

from __future__ import annotations

import math
import re

_CHOICE = re.compile(r"^\s*(?:answer\s*[:\-]?\s*)?[\(\[]?([A-J])(?:[\)\]\.:,]|\s*$|\s*\n)")
_ANSWER_IS = re.compile(r"answer(?: is)?\s*[:\-]?\s*[\(\[]?([A-J])\b", re.I)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_WORD = re.compile(r"\w+")


def answer_key(text: str | None) -> str | None:
    """``"A"`` for a multiple-choice answer, ``"#42"`` for a final number, else ``None``."""
    if not text:
        return None
    head = text.strip()[:200]
    match = _CHOICE.match(head) or _ANSWER_IS.search(text[:2000])
    if match:
        return match.group(1).upper()
    if "```" in text or "def " in text:
        return None
    numbers = _NUMBER.findall(text[-600:])
    if numbers:
        value = numbers[-1].replace(",", "").rstrip(".")
        try:
            number = float(value)
        except ValueError:
            return None
        return "#" + (str(int(number)) if number.is_integer() else f"{number:g}")
    return None


def word_set(text: str | None, limit: int = 400) -> frozenset[str]:
    if not text:
        return frozenset()
    return frozenset(_WORD.findall(text.lower())[:limit])


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


def answer_shape(text: str | None) -> tuple[float, float]:
    """(log length, has code): a long essay where a letter was asked for is a warning sign."""
    if not text:
        return 0.0, 0.0
    return math.log1p(len(text)) / 8.0, 1.0 if "```" in text or "def " in text else 0.0


_LEAD_CHOICE = re.compile(r"^\s*(?:answer\s*[:\-]?\s*)?[\(\[]?([A-J])(?![A-Za-z0-9'])")
_OPTION_LINE = re.compile(r"^\s*[\(\[]?([A-J])[\)\]\.:]\s*(.+?)\s*$", re.M)


def prompt_options(prompt: str, tail: int = 2000) -> dict[str, str]:
    """The lettered options of the last question in ``prompt`` (``A) Kyle`` lines), in
    lower case; empty when the prompt lists none."""
    options: dict[str, str] = {}
    for match in _OPTION_LINE.finditer(prompt[-tail:]):
        letter, text = match.group(1), match.group(2).lower()
        if letter == "A":
            options = {}
        options[letter] = text
    return options


def choice_key(text: str | None, options: dict[str, str] | None = None) -> str | None:
    """The option an answer picks: a leading letter (``"D"``, ``"B)"``, ``"(C) ..."``,
    ``"Answer: A"``), else an answer that starts with exactly one option's text."""
    if not text:
        return None
    match = _LEAD_CHOICE.match(text[:80]) or _ANSWER_IS.search(text[:400])
    if match:
        return match.group(1).upper()
    low = text.strip().lower()
    if low and options:
        hits = [k for k, v in options.items() if v and (low.startswith(v) or v.startswith(low))]
        if len(hits) == 1:
            return hits[0]
    return None
