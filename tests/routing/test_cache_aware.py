"""Prompt-cache-aware routing: cache rules as data, the prefix tracker, effective cost."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from kanjia.catalog import Usage, cost_of, load_catalog
from kanjia.cli.route import route
from kanjia.config import load_settings
from kanjia.errors import ConfigError
from kanjia.routing.directory import ModelDirectory
from kanjia.routing.health import HealthBoard
from kanjia.routing.planner import Planner, cache_slot
from kanjia.routing.prefix import PrefixTracker, prefix_blocks
from kanjia.vendors import load_vendor_specs

CATALOG = load_catalog()
AT = datetime(2026, 12, 1, 12, tzinfo=UTC)
# list prices: doubao-lite 0.3 in / 0.6 out (no cache rules), glm-4-air 0.5 / 0.25 cached
PAIR = ["doubao/doubao-lite-32k", "zhipu/glm-4-air"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _planner(tracker: PrefixTracker, **route: object) -> Planner:
    routes = {"pair": {"models": PAIR, "objective": "cheapest", **route}}
    settings = load_settings(None, sandbox_url="http://sb.invalid", routes=routes)
    directory = ModelDirectory(settings, CATALOG, load_vendor_specs(), {})
    return Planner(settings, directory, CATALOG, HealthBoard(), clock=lambda: AT,
                   prefixes=tracker)


def _conversation(turns: int) -> dict[str, object]:
    messages: list[dict[str, str]] = [{"role": "system", "content": "policy " * 8000}]
    for i in range(turns):
        messages += [{"role": "user", "content": f"question {i}"},
                     {"role": "assistant", "content": f"answer {i}"}]
    messages.append({"role": "user", "content": "and now?"})
    return {"model": "pair", "messages": messages, "max_tokens": 100}


def test_every_cache_rule_is_sourced_and_validated() -> None:
    rules = {v.id: v.cache for v in CATALOG.vendors.values() if v.cache is not None}
    assert {"deepseek", "openai", "anthropic", "gemini", "qwen"} <= set(rules)
    assert rules["anthropic"].mode == "explicit" and rules["anthropic"].write_premium
    assert rules["openai"].cached(1000) == 0 and rules["openai"].cached(1300) == 1280
    assert all(r.source.startswith("https://") and r.ttl_s > 0 for r in rules.values())


def test_a_bad_cache_rule_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "acme.toml").write_text(
        '[vendor]\nname = "Acme"\nregion = "global"\ncurrency = "USD"\n'
        'pricing_urls = ["https://acme.invalid/pricing"]\n[vendor.cache]\n'
        'mode = "sometimes"\nmin_tokens = 0\nttl_s = 300\nsource = "https://acme.invalid"\n'
        'checked = 2026-12-01\nevidence = "S"\n')
    with pytest.raises(ConfigError, match=r"acme\.toml.*cache"):
        load_catalog([tmp_path], market=False)


def test_tracker_is_per_deployment_expires_and_is_bounded() -> None:
    clock = Clock()
    tracker = PrefixTracker(max_entries=50, clock=clock)
    body = _conversation(3)
    prefix = prefix_blocks(body)
    tracker.sent("dep-a", prefix, ttl_s=300)
    assert tracker.held("dep-a", prefix) == prefix.tokens
    assert tracker.held("dep-b", prefix) == 0
    # the next turn extends the prefix: everything but its new blocks is held
    longer = prefix_blocks(_conversation(4))
    assert 0 < tracker.held("dep-a", longer) < longer.tokens
    assert tracker.holder(["dep-b", "dep-a"], longer) == "dep-a"
    clock.now += 301
    assert tracker.held("dep-a", prefix) == 0 and tracker.holder(["dep-a"], prefix) is None
    for i in range(100):
        tracker.sent(f"dep-{i}", prefix, ttl_s=300)
    assert len(tracker) <= 50


def test_cache_aware_routing_picks_the_candidate_holding_the_prefix() -> None:
    tracker = PrefixTracker()
    planner = _planner(tracker)
    # one message: no stable prefix to expect from cache; list price: doubao is cheaper
    body = {"model": "pair", "max_tokens": 100,
            "messages": [{"role": "user", "content": "policy " * 8000}]}
    cold = planner.plan("pair", body)
    assert [t.key for t in cold.targets] == PAIR
    glm = next(t for t in cold.targets if t.key == "zhipu/glm-4-air")
    planner.sent(glm, glm.deployments[0].id, cold)
    warm = planner.plan("pair", body)
    assert warm.targets[0].key == "zhipu/glm-4-air"
    first = warm.candidates[0]
    assert first.key == "zhipu/glm-4-air" and first.cached_tokens > 0
    assert glm.entry is not None
    expected = cost_of(Usage(warm.prompt_tokens, first.cached_tokens, 0, 100, 0), glm.entry, AT)
    assert first.expected_cost == expected.amount
    # a plain (not cache-aware) route keeps the list-price ranking
    plain = _planner(tracker, cache_aware=False).plan("pair", body)
    assert [t.key for t in plain.targets] == PAIR and plain.prefix is None


def test_a_cold_conversation_is_priced_as_it_will_pay_once_it_sticks() -> None:
    """Nothing held anywhere: the stable prefix (all but the last message) counts as
    cached by each vendor's rules, so the candidate with the real cache discount wins;
    a route's own ``expected_cached_share`` keeps the list-price ranking it asks for."""
    body = _conversation(10)
    cold = _planner(PrefixTracker()).plan("pair", body)
    assert cold.targets[0].key == "zhipu/glm-4-air"
    assert cold.candidates[0].cached_tokens > 0.9 * cold.prompt_tokens
    doubao = next(c for c in cold.candidates if c.key == "doubao/doubao-lite-32k")
    assert doubao.cached_tokens == 0  # no cache rules for the vendor: no credit
    prior = _planner(PrefixTracker(), expected_cached_share=0.5).plan("pair", body)
    assert [t.key for t in prior.targets] == PAIR


def test_explicit_caches_count_only_marked_prompts() -> None:
    planner = _planner(PrefixTracker())
    target = planner.directory.resolve("anthropic/claude-3-5-haiku-20241022")
    unmarked = prefix_blocks(_conversation(2))
    marked = prefix_blocks({"messages": [{"role": "system", "content": [
        {"type": "text", "text": "policy " * 8000, "cache_control": {"type": "ephemeral"}}]}]})
    for prefix in (unmarked, marked):
        planner.prefixes.sent(cache_slot(target, target.deployments[0].id), prefix, 300)
    assert planner.cached_tokens(target, unmarked, 10**6) == 0
    assert planner.cached_tokens(target, marked, 10**6) > 1024


def test_route_explain_shows_base_and_effective_price() -> None:
    runner = CliRunner()
    with runner.isolated_filesystem():
        Path("k.toml").write_text(
            '[routes.pair]\nmodels = ["doubao/doubao-lite-32k", "zhipu/glm-4-air"]\n')
        out = runner.invoke(route, ["explain", "pair", "--prompt-tokens", "20000",
                                    "--max-tokens", "100", "--cached-tokens", "19000",
                                    "--at", AT.isoformat(), "--config", "k.toml", "--json"])
        assert out.exit_code == 0, out.output
        data = json.loads(out.output)
        text = runner.invoke(route, ["explain", "pair", "--prompt-tokens", "20000",
                                     "--max-tokens", "100", "--cached-tokens", "19000",
                                     "--at", AT.isoformat(), "--config", "k.toml"])
    assert data["chosen"] == "zhipu/glm-4-air"
    by = {c["model"]: c for c in data["candidates"]}
    glm, doubao = by["zhipu/glm-4-air"], by["doubao/doubao-lite-32k"]
    assert Decimal(str(glm["effective_cost"])) < Decimal(str(glm["base_cost"]))
    assert glm["cached_tokens"] == 19000
    assert doubao["effective_cost"] == doubao["base_cost"]  # no cache rules: no credit
    assert Decimal(str(doubao["base_cost"])) < Decimal(str(glm["base_cost"]))
    assert "base" in text.output and "effective" in text.output
    assert f"{Decimal(str(glm['base_cost'])):.6f}" in text.output   # JSON numbers, exact


def test_explicit_cache_writes_are_priced_at_the_write_premium() -> None:
    tracker = PrefixTracker()
    routes = {"claude": {"models": ["anthropic/claude-3-5-haiku-20241022",
                                    "doubao/doubao-lite-32k"], "objective": "cheapest"}}
    settings = load_settings(None, sandbox_url="http://sb.invalid", routes=routes)
    directory = ModelDirectory(settings, CATALOG, load_vendor_specs(), {})
    planner = Planner(settings, directory, CATALOG, HealthBoard(), clock=lambda: AT,
                      prefixes=tracker)
    system = {"role": "system", "content": [{"type": "text", "text": "policy " * 6000,
                                             "cache_control": {"type": "ephemeral"}}]}
    turn = [system, {"role": "user", "content": "one " * 2000}]
    body = {"model": "claude", "max_tokens": 100,
            "messages": [*turn, {"role": "assistant", "content": "two " * 2000},
                         {"role": "user", "content": "three"}]}
    claude = planner.directory.resolve("anthropic/claude-3-5-haiku-20241022")
    tracker.sent(cache_slot(claude, claude.deployments[0].id),
                 prefix_blocks({"messages": turn}), 300)
    plan = planner.plan("claude", body)
    cand = next(c for c in plan.candidates if c.key == claude.key)
    assert cand.cached_tokens > 0 and claude.entry is not None
    prefix = prefix_blocks(body)
    written = min(planner.stable_tokens(claude, prefix), plan.prompt_tokens) - cand.cached_tokens
    assert written > 0
    usage = Usage(plan.prompt_tokens, cand.cached_tokens, written, 100, 0)
    assert cand.expected_cost == cost_of(usage, claude.entry, AT).amount
    no_write = cost_of(Usage(plan.prompt_tokens, cand.cached_tokens, 0, 100, 0),
                       claude.entry, AT).amount
    assert cand.expected_cost is not None and cand.expected_cost > no_write
