"""``router eval``: the test-split report (curves, baselines, AIQ, APGR/CPT, decision time)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from kanjia.lab._baselines import (
    Baseline,
    oracle,
    random_mix,
    single_models,
    task_label,
)
from kanjia.lab._dataset import Dataset
from kanjia.lab._metrics import aiq, apgr, cpt, dominance_margin
from kanjia.lab._simulate import (
    Outcome,
    ReplayCache,
    route_by_target,
    route_by_weight,
    router_logits,
    run_plan,
)
from kanjia.routing.quality._plan import WEIGHTS
from kanjia.routing.quality._router import QualityRouter

TARGETS = tuple(float(t) for t in np.round(np.linspace(0.05, 0.99, 48), 4))
BUDGETS = (0.13, 0.25)


def _points(outcomes: list[tuple[float, Outcome]], mask: np.ndarray) -> list[dict[str, float]]:
    return [
        {
            "threshold": t,
            "accuracy": float(o.quality[mask].mean()),
            "mean_cost": float(o.cost[mask].mean()),
        }
        for t, o in outcomes
    ]


def _xy(points: list[dict[str, float]]) -> list[tuple[float, float]]:
    return [(p["mean_cost"], p["accuracy"]) for p in points]


def _best_within(points: list[dict[str, float]], budget: float) -> dict[str, float] | None:
    inside = [p for p in points if p["mean_cost"] <= budget]
    return max(inside, key=lambda p: (p["accuracy"], -p["mean_cost"])) if inside else None


def _two_model(
    data: Dataset, outcomes: list[tuple[float, Outcome]], mask: np.ndarray, strong: int, weak: int
) -> dict[str, float]:
    weak_q = float(data.quality[mask, weak].mean())
    strong_q = float(data.quality[mask, strong].mean())
    share = [float(o.called[mask, strong].mean()) for _, o in outcomes]
    quality = [float(o.quality[mask].mean()) for _, o in outcomes]
    return {
        "apgr": apgr(share, quality, weak_q, strong_q),
        "cpt50": cpt(share, quality, weak_q, strong_q, 0.5),
        "cpt80": cpt(share, quality, weak_q, strong_q, 0.8),
        "weak_accuracy": weak_q,
        "strong_accuracy": strong_q,
    }


def gain_sweep(
    data: Dataset,
    logits: np.ndarray,
    router: QualityRouter,
    strong: int,
    weak: int,
    steps: int = 100,
) -> list[tuple[float, Outcome]]:
    """RouteLLM-style threshold sweep: send the share ``s`` of prompts with the largest
    predicted gain ``P(strong good) - P(weak good)`` to the strong model."""
    cols = [router.models.index(m) for m in data.models]
    proba = 1.0 / (1.0 + np.exp(-logits[:, cols]))
    order = np.argsort(-(proba[:, strong] - proba[:, weak]), kind="stable")
    rows = np.arange(len(data))
    out = []
    for k in range(steps + 1):
        picks = np.full(len(data), weak, dtype=np.int64)
        picks[order[: round(k / steps * len(data))]] = strong
        called = np.zeros(data.quality.shape, dtype=bool)
        called[rows, picks] = True
        out.append((k / steps, Outcome(data.quality[rows, picks], data.cost[rows, picks], called)))
    return out


def decision_times(router: QualityRouter, data: Dataset, limit: int = 300) -> dict[str, float]:
    """Milliseconds for one ``choose`` call (prompt features + prediction + rule)."""
    n = min(limit, len(data))
    times = []
    for i in range(n):
        candidates = list(zip(data.models, router.costs_for(data.tasks[i]).tolist(), strict=True))
        start = time.perf_counter()
        router.choose(data.prompts[i], candidates, 0.8, data.tasks[i])
        times.append((time.perf_counter() - start) * 1000.0)
    if not times:
        return {"p50": 0.0, "p99": 0.0, "n": 0}
    return {
        "p50": float(np.percentile(times, 50)),
        "p99": float(np.percentile(times, 99)),
        "n": n,
    }


def _baseline_json(b: Baseline, lo: float, hi: float) -> dict[str, Any]:
    out: dict[str, Any] = {"accuracy": b.accuracy, "mean_cost": b.mean_cost}
    out["aiq"] = aiq(b.points(), lo, hi)
    if b.curve:
        out["curve"] = [{"threshold": t, "accuracy": a, "mean_cost": c} for t, a, c in b.curve]
    return out


def evaluate(router: QualityRouter, data: Dataset) -> dict[str, Any]:
    train, test = data.train(), data.test()
    if len(test) == 0:
        raise ValueError("the test split is empty")
    logits = router_logits(router, test)
    cache: ReplayCache = {}
    plan = [(w, run_plan(router, test, logits, w, cache)) for w in router.plan_weights or WEIGHTS]
    by_weight = [(w, route_by_weight(router, test, logits, w)) for w in WEIGHTS]
    by_target = [(t, route_by_target(router, test, logits, t)) for t in TARGETS]

    singles = single_models(test)
    baselines: dict[str, Baseline] = dict(singles)
    baselines["task_label"] = task_label(train, test, router.cost_scale)
    baselines["random_mix"] = random_mix(train, test)
    baselines["oracle"] = oracle(test, router.cost_scale)
    lo = min(b.mean_cost for b in singles.values())
    hi = max(b.mean_cost for b in singles.values())

    everything = np.ones(len(test), dtype=bool)
    curve = _points(plan, everything)
    curves = {
        "router_weight": _points(by_weight, everything),
        "router_target": _points(by_target, everything),
    }
    reference = int(np.argmax(train.quality.mean(0)))
    reference_cost = singles[test.models[reference]].mean_cost
    checks = sum(p.check for ps in router.cascades.values() for p in ps)
    report: dict[str, Any] = {
        "models": list(test.models),
        "tasks": list(test.task_names),
        "rows": {"train": len(train), "test": len(test)},
        "currency": test.currency,
        "cost_source": test.cost_source,
        "method": (
            "plan: convex-hull combination across tasks of single models, the prompt "
            "router and cascades (agreement votes on choice tasks)"
        ),
        # code-check cascades, and whether they ran the answers' code (else each called
        # its most accurate model alone)
        "code_check_cascades": checks,
        "code_checks": router.checker is not None and checks > 0,
        "curve": curve,
        "curves": curves,
        "baselines": {k: _baseline_json(b, lo, hi) for k, b in baselines.items()},
        "aiq": aiq(_xy(curve), lo, hi),
        "aiq_by_method": {k: aiq(_xy(v), lo, hi) for k, v in curves.items()},
        "aiq_cost_range": [lo, hi],
        "vs_task_label": {},
        "budgets": {},
        "decision_ms": decision_times(router, test),
    }
    tl = baselines["task_label"].points()
    margin = dominance_margin(_xy(curve), tl)
    report["vs_task_label"] = {"min_margin": margin, "on_or_above": margin >= -1e-12}
    report["budgets"] = {
        f"{int(b * 100)}%_of_{test.models[reference]}": _best_within(curve, b * reference_cost)
        for b in BUDGETS
    }
    two = len(test.models) == 2
    strong, weak = reference, 1 - reference
    if two:
        report.update(_two_model(test, plan, everything, strong, weak))
        report["strong_model"], report["weak_model"] = test.models[strong], test.models[weak]
        report["two_model_method"] = "plan (weight sweep); router_gain_sweep: RouteLLM-style"
    by_task: dict[str, Any] = {}
    for task in test.task_names:
        mask = test.task_mask(task)
        entry: dict[str, Any] = {"rows": int(mask.sum()), "curve": _points(plan, mask)}
        if two:
            entry.update(_two_model(test, plan, mask, strong, weak))
            sub = test.subset(mask)
            sweep = gain_sweep(sub, logits[mask], router, strong, weak)
            entry["router_gain_sweep"] = _two_model(
                sub, sweep, np.ones(len(sub), dtype=bool), strong, weak
            )
        by_task[task] = entry
    report["by_task"] = by_task
    return report
