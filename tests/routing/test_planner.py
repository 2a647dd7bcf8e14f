"""Routes: constraints filter the catalog, the objective ranks what is left."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kanjia.catalog import load_catalog
from kanjia.config import load_settings
from kanjia.errors import BadRequest
from kanjia.routing.directory import ModelDirectory
from kanjia.routing.health import HealthBoard
from kanjia.routing.planner import Planner
from kanjia.vendors import load_vendor_specs

CATALOG = load_catalog()


def _planner(**routes: dict[str, object]) -> Planner:
    settings = load_settings(None, sandbox_url="http://sb.invalid", routes=routes)
    directory = ModelDirectory(settings, CATALOG, load_vendor_specs(), {})
    return Planner(settings, directory, CATALOG, HealthBoard())


def test_cheapest_ranks_by_expected_cost() -> None:
    p = _planner()
    plan = p.explain("cheap-chat", 1000, 200, datetime(2026, 11, 1, 12, tzinfo=UTC))
    kept = [c for c in plan.candidates if c.kept]
    assert kept
    refs = [c.expected_cost_ref for c in kept]
    assert refs == sorted(refs)  # type: ignore[type-var]


def test_cn_only_keeps_mainland_vendors() -> None:
    p = _planner()
    plan = p.explain("cn-only", 500, 100)
    assert plan.targets
    specs = load_vendor_specs()
    assert all(specs[t.vendor].region == "cn" for t in plan.targets)


def test_long_doc_needs_128k_context() -> None:
    p = _planner()
    plan = p.explain("long-doc", 100_000, 1000)
    assert plan.targets
    assert all(t.entry is not None and t.entry.context_window >= 128_000 for t in plan.targets)


def test_too_long_for_small_models_goes_to_larger_context() -> None:
    p = _planner(small={"models": ["moonshot/moonshot-v1-8k", "moonshot/moonshot-v1-128k"]})
    short = p.explain("small", 1000, 100)
    assert short.targets[0].key == "moonshot/moonshot-v1-8k"
    long = p.explain("small", 50_000, 100)
    assert [t.key for t in long.targets] == ["moonshot/moonshot-v1-128k"]


def test_choice_changes_with_price_date() -> None:
    p = _planner(pair={"models": ["qwen/qwen-max", "zhipu/glm-4"], "objective": "cheapest"})
    before = p.explain("pair", 1000, 1000, datetime(2024, 6, 10, tzinfo=UTC))
    after = p.explain("pair", 1000, 1000, datetime(2025, 1, 10, tzinfo=UTC))
    assert before.targets[0].key != after.targets[0].key or \
        before.candidates[0].expected_cost != after.candidates[0].expected_cost


def test_deepseek_offpeak_window_changes_expected_cost() -> None:
    p = _planner(ds={"models": ["deepseek/deepseek-chat"]})
    peak = p.explain("ds", 1000, 1000, datetime(2025, 3, 3, 4, 0, tzinfo=UTC))      # 12:00 BJT
    off = p.explain("ds", 1000, 1000, datetime(2025, 3, 3, 18, 0, tzinfo=UTC))     # 02:00 BJT
    assert off.candidates[0].expected_cost < peak.candidates[0].expected_cost  # type: ignore[operator]


def test_tools_requirement_filters() -> None:
    p = _planner()
    body = {"model": "cheap-chat", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}]}
    plan = p.plan("cheap-chat", body)
    assert all("tools" in t.entry.capabilities for t in plan.targets if t.entry)


def test_no_fit_is_a_clear_400() -> None:
    p = _planner(tiny={"models": ["moonshot/moonshot-v1-8k"]})
    body = {"model": "tiny", "messages": [{"role": "user", "content": "字" * 20_000}]}
    with pytest.raises(BadRequest, match="no model fits"):
        p.plan("tiny", body)


def test_ordered_objective_keeps_list_order() -> None:
    p = _planner(o={"models": ["openai/gpt-4o", "deepseek/deepseek-chat"], "objective": "ordered"})
    plan = p.explain("o", 100, 100)
    assert [t.key for t in plan.targets] == ["openai/gpt-4o", "deepseek/deepseek-chat"]


class _StubQuality:
    """Predicts the strong model is needed whenever the prompt mentions a proof."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[tuple[str, float]]]] = []

    def choose(self, prompt: str, candidates: object, quality_target: float,
               task: str | None = None) -> str:
        cands = list(candidates)  # type: ignore[call-overload]
        self.seen.append((prompt, cands))
        return "strong" if "proof" in prompt else min(cands, key=lambda c: c[1])[0]

    def choose_weighted(self, prompt: str, candidates: object, weight: float,
                        task: str | None = None) -> str:
        return self.choose(prompt, candidates, 0.5, task)


def test_quality_objective_puts_the_learned_choice_first() -> None:
    route = {"models": ["openai/gpt-4o", "qwen/qwen-turbo"], "objective": "quality",
             "quality_target": 0.8,
             "quality_models": {"openai/gpt-4o": "strong", "qwen/qwen-turbo": "weak"}}
    settings = load_settings(None, sandbox_url="http://sb.invalid", routes={"smart": route})
    directory = ModelDirectory(settings, CATALOG, load_vendor_specs(), {})
    stub = _StubQuality()
    p = Planner(settings, directory, CATALOG, HealthBoard(), quality=stub)
    easy = p.plan("smart", {"messages": [{"role": "user", "content": "say hi"}]})
    hard = p.plan("smart", {"messages": [{"role": "user", "content": "write a proof"}]})
    assert easy.targets[0].key == "qwen/qwen-turbo"
    assert hard.targets[0].key == "openai/gpt-4o"
    assert [t.key for t in hard.targets] == ["openai/gpt-4o", "qwen/qwen-turbo"]  # fallback kept
    assert {n for n, _ in stub.seen[0][1]} == {"strong", "weak"}


def test_narrow_drops_candidates_with_their_reasons() -> None:
    from kanjia.routing.planner import narrow

    p = _planner(mixed={"models": ["deepseek/deepseek-chat", "openai/gpt-4o"],
                        "objective": "ordered"})
    plan = p.plan("mixed", {"messages": [{"role": "user", "content": "hi"}]})
    assert [t.key for t in plan.targets] == ["deepseek/deepseek-chat", "openai/gpt-4o"]
    same, none = narrow(plan, lambda t: None)
    assert same is plan and none == []
    left, reasons = narrow(plan, lambda t: "no" if t.vendor == "openai" else None)
    assert [t.key for t in left.targets] == ["deepseek/deepseek-chat"]
    assert reasons == [("openai/gpt-4o", "no")]
    dropped = next(c for c in left.candidates if c.key == "openai/gpt-4o")
    assert not dropped.kept and dropped.reason == "no"
