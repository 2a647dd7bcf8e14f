"""Counts are remembered per (tokenizer, text): the same numbers, bounded memory."""

from __future__ import annotations

from typing import Any

import pytest

from kanjia.tokens import TokenCounter, _counter, rough_tokens
from kanjia.tokens._request import extra_content


class _Counting:
    """A tokenizer that counts its calls (one token per word)."""

    def __init__(self) -> None:
        self.calls = 0

    def encode_ordinary(self, text: str) -> list[int]:
        self.calls += 1
        return [0] * len(text.split())


class _PerChar(_Counting):
    """One token per character."""

    def encode_ordinary(self, text: str) -> list[int]:
        self.calls += 1
        return [0] * len(text)


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


def test_new_chars_defers_a_count_with_much_new_text_and_keeps_what_it_counted() -> None:
    enc = _Counting()
    counter = _counter_with(enc)
    old = "an earlier turn of a long conversation " * 50  # 1,950 characters
    body: dict[str, Any] = {"messages": [{"role": "user", "content": old}]}
    whole = counter.bound_request_tokens("deepseek", "deepseek-chat", body)
    assert whole is not None
    # the earlier turn is remembered: only the new text counts against new_chars
    body["messages"].append({"role": "user", "content": "x" * 500})
    assert counter.bound_request_tokens("deepseek", "deepseek-chat", body,
                                        new_chars=100) is None
    bound = counter.bound_request_tokens("deepseek", "deepseek-chat", body, new_chars=1000)
    assert bound is not None and bound > whole
    assert bound == _counter_with(_Counting()).bound_request_tokens(
        "deepseek", "deepseek-chat", body)
    # every text is known now: nothing new, whatever the limit
    calls = enc.calls
    assert counter.bound_request_tokens("deepseek", "deepseek-chat", body,
                                        new_chars=0) == bound
    assert enc.calls == calls


def test_the_one_pass_bound_equals_the_exact_count_and_the_rough_rule() -> None:
    counter = _counter_with(_Counting())
    body: dict[str, Any] = {"messages": [
        {"role": "system", "content": "你是一个采购助手。 " * 30},
        {"role": "user", "content": [{"type": "text", "text": "比较 three vendors"}]},
        {"role": "assistant", "content": None, "name": "bot",
         "tool_calls": [{"function": {"name": "price", "arguments": "{\"v\": 1}"}}]},
        {"role": "tool", "content": "¥2 per million"}],
        "tools": [{"type": "function", "function": {"name": "price"}}]}
    exact = counter.count_request_tokens("deepseek", "deepseek-chat", body)
    fam = counter.family("deepseek", "deepseek-chat")
    rough = fam.priming + sum(
        fam.per_message + sum(rough_tokens(t) + images for t, images in _counter._pieces(m))
        for m in body["messages"]) + sum(rough_tokens(t) for t in extra_content(body))
    assert rough > exact  # (the fake tokenizer counts words: the rough rule is larger)
    assert counter.bound_request_tokens("deepseek", "deepseek-chat", body) == rough
    # and with a tokenizer that counts more than the rough rule, the exact count wins
    assert _counter_with(_PerChar()).bound_request_tokens("deepseek", "deepseek-chat", body) \
        == _counter_with(_PerChar()).count_request_tokens("deepseek", "deepseek-chat", body)
