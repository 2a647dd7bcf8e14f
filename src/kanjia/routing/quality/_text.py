"""Prompt text to hashed n-gram counts (stable CRC-32 buckets, no vocabulary to store)."""

from __future__ import annotations

import math
import re
import zlib

_TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def bucket(term: str, n_buckets: int) -> int:
    return zlib.crc32(term.encode("utf-8")) % n_buckets


def hashed_counts(text: str, n_buckets: int) -> dict[int, int]:
    """Counts of word unigrams and bigrams, by bucket."""
    words = tokens(text)
    counts: dict[int, int] = {}
    previous = "^"
    for word in words:
        for term in (word, previous + " " + word):
            b = zlib.crc32(term.encode("utf-8")) % n_buckets
            counts[b] = counts.get(b, 0) + 1
        previous = word
    return counts


def shape_features(text: str) -> list[float]:
    """A few scale-free numbers about the prompt's shape."""
    n = len(text)
    digits = sum(c.isdigit() for c in text[-2000:])
    return [
        math.log1p(n) / 10.0,
        math.log1p(text.count("\n")) / 5.0,
        digits / max(1, min(n, 2000)),
        1.0 if "```" in text or "def " in text else 0.0,
        math.log1p(text.count("?")) / 3.0,
    ]


N_SHAPE = 5
