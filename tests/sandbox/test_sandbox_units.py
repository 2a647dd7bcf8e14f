"""Unit tests of the sandbox's building blocks (no server)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

import kanjia.sandbox as sandbox_pkg
from kanjia.sandbox._cache import CachePolicy, PromptCache, Segments
from kanjia.sandbox._directives import NO_DIRECTIVES, Directives, parse_directives
from kanjia.sandbox._faults import FAULTS, FaultBook, FaultRule, parse_rule
from kanjia.sandbox._filler import CYCLE, filler_pieces, json_pieces
from kanjia.sandbox._plan import Ask, plan
from kanjia.sandbox._tokens import is_cjk, text_tokens
from kanjia.sandbox._tools import ToolCall, example_args, split_args
from kanjia.sandbox._vendors.openai_compat_vendors import OA_VENDORS, load_vendors


def test_public_api_is_exactly_all() -> None:
    public = {n for n in dir(sandbox_pkg) if not n.startswith("_")}
    assert public - {"annotations"} == set(sandbox_pkg.__all__)


def test_vendors_served() -> None:
    assert set(sandbox_pkg.VENDORS) == {
        *("deepseek", "qwen", "zhipu", "moonshot", "minimax", "doubao", "qianfan", "hunyuan"),
        *("spark", "siliconflow", "openai", "openrouter", "vllm", "ollama", "llamacpp"),
        *("mistral", "xai", "groq", "together", "fireworks", "cerebras", "perplexity", "novita"),
        *("cohere", "anthropic", "gemini", "azure", "bedrock"),
    }


def test_openai_compatible_vendors_are_named_as_in_vendors_toml() -> None:
    """One section of the sandbox's ``openai_compat.toml`` per OpenAI-kind vendor key of
    kanjia's ``vendors.toml`` (read here as a file: the sandbox never imports the adapters)."""
    adapters = Path(sandbox_pkg.__file__).parents[1] / "vendors" / "vendors.toml"
    rows = tomllib.loads(adapters.read_text(encoding="utf-8"))["vendors"]
    assert set(OA_VENDORS) == {k for k, row in rows.items() if row["kind"] == "openai"}


@pytest.mark.parametrize(("row", "error"), [
    ('models = ["m"]\nstream_usage = "always"', "stream_usage"),
    ('models = ["m"]\nsuports_n = true', "suports_n"),
    ('models = ["m"]\n[vendors.v.errors.auth]\nstatus = 401\nmesage = "no"', "mesage"),
    ('models = ["m"]\n[vendors.v.errors.auth]\nstatus = 401\nshape = "nope"', "nope"),
])
def test_a_misspelt_vendor_row_fails_to_load(tmp_path: Path, row: str, error: str) -> None:
    path = tmp_path / "openai_compat.toml"
    path.write_text(f"[vendors.v]\n{row}\n", encoding="utf-8")
    with pytest.raises((TypeError, ValueError, KeyError), match=error):
        load_vendors(path)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("abcd", 1), ("abcde", 2), ("你好", 2), ("你好ab", 3), ("x" * 400, 100)],
)
def test_text_tokens(text: str, tokens: int) -> None:
    assert text_tokens(text) == tokens


def test_is_cjk() -> None:
    assert is_cjk("大模型价格战谁会受益")
    assert is_cjk("请用中文回答 [[sandbox:tokens=10]]")
    assert not is_cjk("hello world")
    assert not is_cjk("café au lait, s'il vous plaît, merci beaucoup")


def test_filler_is_deterministic_and_sized() -> None:
    a = filler_pieces(50, 123, False)
    assert a == filler_pieces(50, 123, False)
    assert len(a) == 50
    assert a[0][0].isupper() and not a[0].startswith(" ")
    assert len(filler_pieces(CYCLE * 2 + 5, 7, True)) == CYCLE * 2 + 5
    assert all(len(p) == 1 for p in filler_pieces(40, 9, True))
    assert filler_pieces(0, 1, False) == []


@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 200])
@pytest.mark.parametrize("cjk", [False, True])
def test_json_pieces_are_valid_json(n: int, cjk: bool) -> None:
    assert isinstance(json.loads("".join(json_pieces(n, 5, cjk))), dict)


def test_directives() -> None:
    assert parse_directives("plain text") is NO_DIRECTIVES
    text = "hi [[sandbox:fault=rate_limit]] [[sandbox:tokens=12]] [[sandbox:no_usage]]"
    text += " [[sandbox:tool]]"
    assert parse_directives(text) == Directives(
        fault="rate_limit", tokens=12, no_usage=True, tool=True
    )
    d = parse_directives("[[sandbox:latency_ms=5]][[sandbox:chunk_ms=7]][[sandbox:cached=64]]")
    assert (d.latency_ms, d.chunk_ms, d.cached) == (5, 7, 64)
    assert parse_directives("[[sandbox:tokens=abc]] [[sandbox:bogus=1]]") == Directives()
    assert parse_directives("[[sandbox:fault=explode]]") == Directives()


def test_example_args_from_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "metric": {"type": "boolean"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "where": {"type": "object", "properties": {"lat": {"type": "number"}}},
            "optional": {"type": "string"},
        },
        "required": ["city", "days", "metric", "unit", "tags", "where"],
    }
    assert example_args(schema) == {
        "city": "example",
        "days": 1,
        "metric": True,
        "unit": "celsius",
        "tags": ["example"],
        "where": {"lat": 1},
    }
    assert example_args({"type": "OBJECT", "properties": {"n": {"type": "NUMBER"}}}) == {"n": 1}
    assert example_args(None) == {}


def test_split_args_rejoins() -> None:
    text = '{"city":"example","days":1}'
    assert "".join(split_args(text)) == text
    assert len(split_args(text)) > 1


def test_plan_lengths_and_finish() -> None:
    free = plan(Ask(prompt_tokens=5, last_user="hello"))[0]
    assert 16 <= free.tokens <= 64 and free.finish == "stop"
    assert plan(Ask(prompt_tokens=5, last_user="hello")) == [free]
    capped = plan(Ask(prompt_tokens=5, last_user="hello", max_tokens=7))[0]
    assert (capped.tokens, capped.finish) == (7, "length")
    asked = Ask(prompt_tokens=5, directives=Directives(tokens=30), max_tokens=10)
    assert (plan(asked)[0].tokens, plan(asked)[0].finish) == (10, "length")
    anthropic = plan(Ask(prompt_tokens=5, last_user="hello", max_tokens=4096, max_is_cap=True))[0]
    assert anthropic.tokens == free.tokens and anthropic.finish == "stop"
    tool = plan(Ask(prompt_tokens=5, tool=ToolCall("f", {"a": 1})))[0]
    assert tool.finish == "tool" and tool.pieces == [] and tool.tokens > 0
    many = plan(Ask(prompt_tokens=5, last_user="x", n=3))
    assert len(many) == 3 and many[0].text != many[1].text


def test_plan_stop_sequence_cuts() -> None:
    base = plan(Ask(prompt_tokens=5, last_user="q", directives=Directives(tokens=40)))[0]
    word = base.pieces[10].strip()
    ask = Ask(prompt_tokens=5, last_user="q", directives=Directives(tokens=40), stop=(word,))
    cut = plan(ask)[0]
    assert cut.finish == "stop_sequence" and cut.stop_sequence == word
    assert word not in cut.text and base.text.startswith(cut.text)


def test_plan_reasoning_counts_in_completion() -> None:
    choice = plan(Ask(prompt_tokens=5, last_user="q", reasoning=True))[0]
    assert choice.reasoning_tokens > 0
    assert choice.tokens == len(choice.pieces) + choice.reasoning_tokens


def test_prompt_cache_prefix_units() -> None:
    cache = PromptCache()
    policy = CachePolicy(unit=64, minimum=64)

    def segments(*texts: str) -> Segments:
        seg = Segments()
        for t in texts:
            seg.add(t, 100)
        return seg

    assert cache.lookup("deepseek", segments("sys", "q1"), policy) == 0
    assert cache.lookup("deepseek", segments("sys", "q2"), policy) == 64  # 100 -> 64
    assert cache.lookup("deepseek", segments("sys", "q1", "a", "q3"), policy) == 192  # 200
    assert cache.lookup("other", segments("sys", "q1"), policy) == 0
    assert cache.lookup("deepseek", segments("sys"), CachePolicy(1, 1024)) == 0


def test_fault_rules() -> None:
    with pytest.raises(ValueError):
        parse_rule({"vendor": "deepseek", "fault": "nope"})
    with pytest.raises(ValueError):
        parse_rule({"vendor": "deepseek", "fault": "auth", "count": 0})
    with pytest.raises(ValueError):
        parse_rule({"vendor": "deepseek", "fault": "auth", "probability": 2})
    book = FaultBook(seed=1)
    book.add(FaultRule("deepseek", "rate_limit", count=2))
    book.add(FaultRule("*", "overloaded", model="m2"))
    assert book.pick("qwen", "m1") is None
    assert book.pick("deepseek", "m1") == "rate_limit"
    assert book.pick("deepseek", "m2") == "rate_limit"
    assert book.pick("deepseek", "m2") == "overloaded"
    assert book.pick("qwen", "m2") == "overloaded"
    assert len(book.rules) == 1


def test_probability_rules_are_seeded() -> None:
    def run(seed: int) -> list[str | None]:
        book = FaultBook(seed)
        book.add(FaultRule("*", "server_error", probability=0.3))
        return [book.pick("v", "m") for _ in range(200)]

    assert run(7) == run(7)
    share = run(7).count("server_error") / 200
    assert 0.15 < share < 0.45


def test_every_openai_vendor_answers_every_fault() -> None:
    errors = {"rate_limit", "server_error", "overloaded", "balance", "auth", "context_too_long"}
    for vendor in OA_VENDORS.values():
        assert errors <= set(vendor.errors), vendor.id
        assert "content_filter" in vendor.errors or vendor.filter_finish, vendor.id
        for fault, error in vendor.errors.items():
            assert error.retry_after == (error.status == 429 and fault != "balance")
    assert {"timeout", "reset", "malformed", "slow_stream"} <= FAULTS
