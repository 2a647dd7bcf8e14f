"""Counts are remembered per (tokenizer, text): the same numbers, bounded memory."""

from __future__ import annotations

from typing import Any

import pytest

from kanjia.tokens import TokenCounter, _counter


class _Counting:
    """A tokenizer that counts its calls (one token per word)."""

    def __init__(self) -> None:
        self.calls = 0

    def encode_ordinary(self, text: str) -> list[int]:
        self.calls += 1
        return [0] * len(text.split())


def _counter_with(enc: _Counting) -> TokenCounter:
    counter = TokenCounter()
    counter._encoders = {name: enc for name in  # every family counts with the fake
                         {f.encoding for f in _counter.FAMILIES.values()}}  # type: ignore[misc]
    return counter


def test_repeated_texts_are_counted_once_with_the_same_result() -> None:
    enc = _Counting()
    counter = _counter_with(enc)
    system = "you are a careful assistant " * 20
    body: dict[str, Any] = {"messages": [{"role": "system", "content": system},
                                         {"role": "user", "content": "first question"}]}
    first = counter.count_request_tokens("deepseek", "deepseek-chat", body)
    calls = enc.calls
    body["messages"] += [{"role": "assistant", "content": "an answer"},
                         {"role": "user", "content": "second question"}]
    second = counter.count_request_tokens("deepseek", "deepseek-chat", body)
    # only the two new texts (and the new role name) were tokenized again
    assert enc.calls - calls == 3
    fresh = _counter_with(_Counting()).count_request_tokens("deepseek", "deepseek-chat", body)
    assert second == fresh > first
    assert counter.bound_request_tokens("deepseek", "deepseek-chat", body) >= second


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_counter, "_MEMO_TEXTS", 10)
    monkeypatch.setattr(_counter, "_MEMO_CHARS", 200)
    enc = _Counting()
    counter = _counter_with(enc)
    for i in range(100):
        assert counter.count_text_tokens("deepseek", "deepseek-chat", f"text number {i}") == 3
        assert len(counter._memo) <= 10
        assert counter._memo_chars <= 200
