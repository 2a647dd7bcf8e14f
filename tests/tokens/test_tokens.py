"""Offline token counting: the right tokenizer per family, and never the network."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import Any

import pytest

import kanjia.tokens as tokens_pkg
from kanjia.tokens import IMAGE_TOKENS_HIGH, IMAGE_TOKENS_LOW, TokenCounter, family_for

# the reference texts and counts of price-war.md §4
ZH = "大模型价格战谁会受益？百度文心一言的ERNIE Speed和ERNIE Lite已全面免费。"
EN = "DeepSeek claimed GPT-4-level performance at 1% of the price in early May 2024."


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def counter(tmp_path: Path, no_network: None) -> TokenCounter:
    return TokenCounter(cache_dir=tmp_path / "tiktoken")


@pytest.mark.parametrize(("vendor", "model", "family", "zh", "en"), [
    ("openai", "gpt-4", "cl100k", 36, 23),
    ("openai", "gpt-4o", "o200k", 26, 22),
    ("openai", "gpt-5-mini", "o200k", 26, 22),
    ("qwen", "qwen-max", "qwen", 25, 25),
    ("siliconflow", "Qwen/Qwen3.5-27B", "qwen3.5", 23, 25),
    ("deepseek", "deepseek-chat", "deepseek", 23, 23),
    ("siliconflow", "deepseek-ai/DeepSeek-V3", "deepseek", 23, 23),
])
def test_reference_counts_offline(counter: TokenCounter, vendor: str, model: str, family: str,
                                  zh: int, en: int) -> None:
    assert counter.family(vendor, model).name == family
    assert counter.family(vendor, model).exact
    assert counter.count_text_tokens(vendor, model, ZH) == zh
    assert counter.count_text_tokens(vendor, model, EN) == en


@pytest.mark.parametrize(("vendor", "model"), [
    ("zhipu", "glm-4-plus"), ("qianfan", "ernie-4.0-8k"), ("doubao", "doubao-pro-32k"),
    ("hunyuan", "hunyuan-lite"), ("spark", "lite"), ("anthropic", "claude-3-haiku-20240307"),
    ("gemini", "gemini-2.5-pro"), ("moonshot", "kimi-k2-0711-preview"),
    ("llamacpp", "smollm2-135m"),
])
def test_others_are_a_documented_estimate(counter: TokenCounter, vendor: str,
                                          model: str) -> None:
    fam = family_for(vendor, model)
    assert fam.name == "estimate" and not fam.exact
    assert counter.count_text_tokens(vendor, model, ZH) == 26     # o200k as the proxy


def test_the_cache_dir_is_seeded_with_tiktokens_files(counter: TokenCounter,
                                                      tmp_path: Path) -> None:
    counter.count_text_tokens("openai", "gpt-4o", "hello")
    counter.count_text_tokens("openai", "gpt-4", "hello")
    files = {p.name: p for p in (tmp_path / "tiktoken").iterdir()}
    url = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
    o200k = files[hashlib.sha1(url.format("o200k_base").encode()).hexdigest()]
    assert hashlib.sha256(o200k.read_bytes()).hexdigest() == \
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
    cl100k = files[hashlib.sha1(url.format("cl100k_base").encode()).hexdigest()]
    assert hashlib.sha256(cl100k.read_bytes()).hexdigest() == \
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
    # a second counter reuses the seeded files (and still stays offline)
    again = TokenCounter(cache_dir=tmp_path / "tiktoken")
    assert again.count_text_tokens("openai", "gpt-4o", ZH) == 26


def test_a_corrupt_cache_file_is_replaced(tmp_path: Path, no_network: None) -> None:
    folder = tmp_path / "tiktoken"
    folder.mkdir()
    url = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
    (folder / hashlib.sha1(url.encode()).hexdigest()).write_bytes(b"garbage")
    assert TokenCounter(cache_dir=folder).count_text_tokens("openai", "gpt-4o", EN) == 22


def test_prompt_tokens_include_the_chat_template(counter: TokenCounter) -> None:
    msgs = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "hello", "name": "bob"}]
    # OpenAI's rule: 3 per message + 1 per name + 3 to prime the reply
    text = sum(counter.count_text_tokens("openai", "gpt-4o", t)
               for t in ("system", "You are terse.", "user", "hello", "bob"))
    assert counter.count_prompt_tokens("openai", "gpt-4o", msgs) == text + 3 * 2 + 1 + 3
    assert counter.count_prompt_tokens("openai", "gpt-4o", [{"role": "user",
                                                             "content": "hello"}]) == 8
    qwen = counter.count_prompt_tokens("qwen", "qwen-plus", msgs)
    deepseek = counter.count_prompt_tokens("deepseek", "deepseek-chat", msgs)
    assert qwen > 0 and deepseek > 0


def test_parts_images_and_tool_calls(counter: TokenCounter) -> None:
    base = counter.count_prompt_tokens("openai", "gpt-4o", [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}]}])
    with_image = counter.count_prompt_tokens("openai", "gpt-4o", [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,xx"}}]}])
    low = counter.count_prompt_tokens("openai", "gpt-4o", [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]}])
    assert with_image - base == IMAGE_TOKENS_HIGH and low - base == IMAGE_TOKENS_LOW
    call = [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "1", "type": "function",
         "function": {"name": "get_price", "arguments": '{"model": "qwen-long"}'}}]}]
    assert counter.count_prompt_tokens("openai", "gpt-4o", call) > 3 + 3 + 1


def test_special_token_text_is_plain_text(counter: TokenCounter) -> None:
    for vendor, model in [("openai", "gpt-4o"), ("qwen", "qwen-max"),
                          ("deepseek", "deepseek-chat")]:
        assert counter.count_text_tokens(vendor, model, "<|endoftext|><|im_start|>") > 1
    assert counter.count_text_tokens("openai", "gpt-4o", "") == 0


def test_public_api() -> None:
    public = {n for n in vars(tokens_pkg) if not n.startswith("_")}
    assert set(tokens_pkg.__all__) == public - {"annotations"}
    assert len(tokens_pkg.__all__) == len(set(tokens_pkg.__all__))
