"""The per-task hulls and the combined levels of a trained plan (see
``kanjia.routing.quality._plan`` for what a plan is and how the gateway reads it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from kanjia.lab._metrics import upper_hull
from kanjia.lab._search import Candidate
from kanjia.routing.quality._plan import FRACTIONS

#: A learned policy (the prompt router, or a cascade per extra call) must beat a single
#: model by this many answers on the task's train rows to be preferred: thousands of
#: candidates are compared on the same rows, and the best of them looks better there than
#: it is. Fixed a priori (two answers), not tuned.
PENALTY_ANSWERS = 2.0


def complexity(c: Candidate) -> int:
    if c.kind == "single":
        return 0
    if c.kind == "route":
        return 1
    return len(c.chain) - 1


def task_hull(candidates: Sequence[Candidate], rows: int = 0) -> list[Candidate]:
    """The candidates on the upper convex hull of (cost, quality), cheapest first, after
    the :data:`PENALTY_ANSWERS` penalty; among candidates at the same point, the simplest."""
    penalty = PENALTY_ANSWERS / rows if rows > 0 else 0.0
    best: dict[tuple[float, float], Candidate] = {}
    for raw in candidates:
        c = replace(raw, quality=raw.quality - penalty * complexity(raw))
        point = (c.cost, c.quality)
        if point not in best or complexity(c) < complexity(best[point]):
            best[point] = c
    return [best[p] for p in upper_hull(list(best))]


def _weight(slope: float, scale: float) -> float:
    """The weight at which a segment of this slope (quality per cost) breaks even."""
    return 1.0 / (1.0 + max(slope, 1e-12) * scale)


def global_levels(
    hulls: Mapping[str, Sequence[Candidate]], shares: Mapping[str, float], scale: float
) -> list[tuple[float, dict[str, tuple[Candidate, Candidate, float]]]]:
    """Levels of the combined curve, cheapest first: (weight, per task (policy, dearer
    policy, share of prompts that take the dearer one))."""
    segments = []
    for task, hull in hulls.items():
        for i in range(len(hull) - 1):
            dq = (hull[i + 1].quality - hull[i].quality) * shares[task]
            dc = (hull[i + 1].cost - hull[i].cost) * shares[task]
            segments.append((dq / dc if dc > 0 else np.inf, task, i))
    segments.sort(key=lambda s: (-s[0], s[1], s[2]))
    state = {task: hull[0] for task, hull in hulls.items()}
    first = _weight(segments[0][0], scale) if segments else 0.5
    levels = [(first / 2.0, {t: (c, c, 0.0) for t, c in state.items()})]
    for slope, task, i in segments:
        low, high = hulls[task][i], hulls[task][i + 1]
        start, end = levels[-1][0], max(_weight(slope, scale), levels[-1][0] + 1e-9)
        for k, f in enumerate(FRACTIONS):
            weight = start + (end - start) * (k + 1) / len(FRACTIONS)
            mix = {t: (c, c, 0.0) for t, c in state.items()}
            mix[task] = (high, high, 0.0) if f >= 1.0 else (low, high, f)
            levels.append((weight, mix))
        state[task] = high
    return levels
