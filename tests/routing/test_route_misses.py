"""Route errors name each candidate's real reason, the closest misses first (issue 20)."""

from __future__ import annotations

import pytest

from kanjia.errors import BadRequest
from kanjia.routing.misses import closest_misses, farthest

from .test_planner import _planner


def _error(p: object, name: str, body: dict[str, object], kind: str = "chat") -> str:
    with pytest.raises(BadRequest) as info:
        p.plan(name, body, kind)  # type: ignore[attr-defined]
    return info.value.message


def test_context_misses_name_each_window_largest_first() -> None:
    p = _planner(tiny={"models": ["moonshot/moonshot-v1-8k", "moonshot/moonshot-v1-32k"]})
    msg = _error(p, "tiny", {"messages": [{"role": "user", "content": "字" * 50_000}]})
    assert "()" not in msg
    big = msg.index("moonshot/moonshot-v1-32k: context 32768 <")
    small = msg.index("moonshot/moonshot-v1-8k: context 8192 <")
    assert big < small


def test_embeddings_on_a_chat_route_names_the_embedding_models_first() -> None:
    msg = _error(_planner(), "cheap-chat", {"input": "hi"}, "embeddings")
    # the embedding models are the nearest misses (they only lack a quality rating)
    first = msg.split("(", 1)[1]
    assert first.startswith("unrated (the route needs quality tier 2): ")
    assert "text-embedding-3-small" in msg.split(";")[0]
    assert "candidates lack embeddings" in msg
    assert "quality tier 0" not in msg


def test_a_route_without_configured_models_says_so() -> None:
    p = _planner(empty={"models": ["nope/missing-model"]})
    msg = _error(p, "empty", {"messages": [{"role": "user", "content": "hi"}]})
    assert "none of its models is configured: nope/missing-model" in msg


def test_unrated_replaces_quality_tier_zero() -> None:
    plan = _planner().explain("cheap-chat", 100, 100)
    reasons = [c.reason for c in plan.candidates if not c.kept]
    assert not any(r.startswith("quality tier 0") for r in reasons)
    assert any(r.startswith("unrated") for r in reasons)


def test_closest_misses_orders_and_groups() -> None:
    text = closest_misses([
        ("a/x", "vendor not allowed"),
        ("b/y", "lacks tools"), ("b/z", "lacks tools"), ("b/w", "lacks tools"),
        ("b/v", "lacks tools"),
        ("c/q", "quality tier 1 < 3"), ("c/r", "quality tier 2 < 3"),
        ("d/o", "'max_tokens' is 9000, above d/o's output limit of 8192 tokens"),
        ("e/c", "context 8192 < 9000"), ("e/d", "context 32000 < 90000"),
    ], limit=5)
    parts = text.split("; ")
    assert parts[0].startswith("d/o: 'max_tokens' is 9000")
    assert parts[1].startswith("e/d: context 32000")
    assert parts[2].startswith("e/c: context 8192")
    assert parts[3].startswith("c/r: quality tier 2")
    assert parts[4].startswith("c/q: quality tier 1")
    assert parts[5] == "5 more further off"
    grouped = closest_misses([("b/y", "lacks tools"), ("b/z", "lacks tools")])
    assert grouped == "2 candidates lack tools (b/y, b/z)"
    assert closest_misses([]) == ""


def test_farthest_reason_wins() -> None:
    assert farthest(None, None) is None
    assert farthest("unrated (the route needs quality tier 2)", "lacks embeddings") \
        == "lacks embeddings"
    assert farthest(None, "context 10 < 20") == "context 10 < 20"
