"""The response cache's key: what changes the answer is in it, what does not is not."""

from __future__ import annotations

from typing import Any

from kanjia.cache import cache_key

MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
BASE: dict[str, Any] = {"model": "cheap-chat", "messages": MSGS, "temperature": 0.2}


def _key(body: dict[str, Any], model: str = "deepseek/deepseek-chat", scope: str = "t",
         controls: dict[str, Any] | None = None) -> str:
    return cache_key(scope, model, body, controls)


def test_ignored_fields_do_not_change_the_key() -> None:
    k = _key(BASE)
    assert _key({**BASE, "user": "alice"}) == k
    assert _key({**BASE, "stream": True, "stream_options": {"include_usage": True}}) == k
    assert _key({**BASE, "metadata": {"x": "y"}, "store": True}) == k
    assert _key({**BASE, "model": "something-else"}) == k   # the resolved name counts
    assert _key({**BASE, "seed": None}) == k                 # null is absent


def test_equivalent_spellings_share_a_key() -> None:
    assert _key({**BASE, "stop": "END"}) == _key({**BASE, "stop": ["END"]})
    assert _key({**BASE, "max_tokens": 50}) == _key({**BASE, "max_completion_tokens": 50})
    assert _key({**BASE, "temperature": 1}) == _key({**BASE, "temperature": 1.0})
    assert _key({**BASE, "n": 1}) == _key(BASE)
    parts = [{"role": "system", "content": "be brief"},
             {"role": "user", "content": [{"type": "text", "text": "hi",
                                           "cache_control": {"type": "ephemeral"}}]}]
    assert _key({**BASE, "messages": parts}) == _key(BASE)
    assert _key({"temperature": 0.2, "messages": MSGS}) == _key(BASE)  # field order


def test_everything_that_changes_the_answer_changes_the_key() -> None:
    k = _key(BASE)
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    variants: list[dict[str, Any]] = [
        {"temperature": 0.3}, {"top_p": 0.5}, {"max_tokens": 10}, {"stop": ["x"]},
        {"response_format": {"type": "json_object"}}, {"tools": [tool]},
        {"tool_choice": "required"}, {"seed": 7}, {"n": 2}, {"presence_penalty": 0.1},
        {"messages": [*MSGS, {"role": "assistant", "content": "hello"}]},
        {"messages": [{"role": "user", "content": "hi"}]},
    ]
    keys = {_key({**BASE, **v}) for v in variants}
    assert k not in keys and len(keys) == len(variants)
    assert _key(BASE, model="qwen/qwen-plus") != k
    assert _key(BASE, model="cheap-chat") != k
    assert _key(BASE, controls={"sort": "price"}) != k


def test_scope_separates_tenants() -> None:
    assert _key(BASE, scope="tenant:a") != _key(BASE, scope="tenant:b")
    assert _key(BASE, scope="*") == _key(BASE, scope="*")
