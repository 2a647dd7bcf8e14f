"""The sandbox's prompt caches are per deployment: a prefix hits only where it was sent
(same vendor, model, server and API key), and only within the vendor's lifetime."""

from __future__ import annotations

from typing import Any

from sandbox_helpers import ANTHROPIC_HEADERS, Client

from kanjia.sandbox._cache import CachePolicy, PromptCache, Segments

SYSTEM = {"role": "system", "content": "You are a careful assistant. " * 60}


def _turn(question: str, model: str = "deepseek-chat") -> dict[str, Any]:
    return {"model": model, "messages": [SYSTEM, {"role": "user", "content": question}]}


def _key(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_prefix_hits_only_on_the_key_that_sent_it(client: Client) -> None:
    first = (await client.chat("deepseek", _turn("one"), _key("key-a"))).json["usage"]
    assert first["prompt_cache_hit_tokens"] == 0
    other = (await client.chat("deepseek", _turn("two"), _key("key-b"))).json["usage"]
    assert other["prompt_cache_hit_tokens"] == 0  # another deployment: its own cache
    again = (await client.chat("deepseek", _turn("three"), _key("key-a"))).json["usage"]
    assert again["prompt_cache_hit_tokens"] > 0
    # the same prefix to another model of the vendor is a miss too
    model = (await client.chat("deepseek", _turn("four", "deepseek-reasoner"),
                               _key("key-a"))).json["usage"]
    assert model["prompt_cache_hit_tokens"] == 0


async def test_anthropic_explicit_cache_is_per_key(client: Client) -> None:
    system = [{"type": "text", "text": "keep " * 1500, "cache_control": {"type": "ephemeral"}}]
    body = {"system": system, "messages": [{"role": "user", "content": "q"}]}
    other = {**ANTHROPIC_HEADERS, "x-api-key": "another-key"}
    first = (await client.messages(body)).json["usage"]
    assert first["cache_creation_input_tokens"] > 1024
    elsewhere = (await client.messages(body, other)).json["usage"]
    assert elsewhere["cache_read_input_tokens"] == 0
    assert elsewhere["cache_creation_input_tokens"] > 1024
    back = (await client.messages(body)).json["usage"]
    assert back["cache_read_input_tokens"] == first["cache_creation_input_tokens"]


def test_implicit_entries_live_for_the_policy_lifetime() -> None:
    now = [0.0]
    cache = PromptCache(clock=lambda: now[0])
    policy = CachePolicy(unit=1, minimum=10, ttl_s=300)
    segs = Segments()
    segs.add("system", 100)
    segs.add("question", 5)
    assert cache.lookup("d1", segs, policy) == 0
    now[0] = 299
    assert cache.lookup("d1", segs, policy) == 105  # and refreshed until 599
    now[0] = 598
    assert cache.lookup("d1", segs, policy) == 105
    now[0] = 598 + 301
    assert cache.lookup("d1", segs, policy) == 0
    assert cache.lookup("d2", segs, policy) == 0

