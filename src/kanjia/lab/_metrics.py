"""Summary numbers for cost-quality curves: RouterBench's AIQ, RouteLLM's APGR and CPT."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Point = tuple[float, float]  # (cost, quality)


def upper_hull(points: Sequence[Point]) -> list[Point]:
    """The non-decreasing upper convex hull: the best any mix of these operating points can
    do at each cost (RouterBench's ``get_non_descreasing_convex_hull_of``)."""
    pts = sorted(set(points))
    hull: list[Point] = []
    for p in pts:
        if hull and p[1] <= hull[-1][1]:
            continue  # costs more, no better
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()  # hull[-1] lies on or below the chord
            else:
                break
        hull.append(p)
    return hull


def hull_value(hull: Sequence[Point], cost: float) -> float:
    """Quality reachable at ``cost`` by mixing hull points; 0 below the cheapest point."""
    if not hull or cost < hull[0][0]:
        return 0.0
    xs = [p[0] for p in hull]
    ys = [p[1] for p in hull]
    return float(np.interp(cost, xs, ys))


def aiq(points: Sequence[Point], lo: float, hi: float, grid: int = 2001) -> float:
    """Average quality under the upper hull over the cost range [lo, hi] (flat after the
    last point, zero before the first), i.e. RouterBench's AIQ with cost normalised to the
    range of the candidate models."""
    if hi <= lo:
        return 0.0
    hull = upper_hull(points)
    xs = np.linspace(lo, hi, grid)
    ys = np.array([hull_value(hull, float(x)) for x in xs])
    return float(np.trapezoid(ys, xs) / (hi - lo))


def _sorted_curve(
    strong_share: Sequence[float], quality: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(np.asarray(strong_share), kind="stable")
    return np.asarray(strong_share, dtype=float)[order], np.asarray(quality, dtype=float)[order]


def apgr(
    strong_share: Sequence[float], quality: Sequence[float], weak: float, strong: float
) -> float:
    """Average performance gap recovered: area under quality vs share of strong calls,
    between the always-weak and always-strong areas (RouteLLM ``apgr_metric``)."""
    x, y = _sorted_curve([0.0, *strong_share, 1.0], [weak, *quality, strong])
    area = np.trapezoid(y, x)
    width = x[-1] - x[0]
    return float((area - weak * width) / ((strong - weak) * width))


def cpt(
    strong_share: Sequence[float], quality: Sequence[float], weak: float, strong: float, pgr: float
) -> float:
    """Share of strong calls needed to recover ``pgr`` of the weak-to-strong gap (first
    crossing of the linearly interpolated curve); 1.0 if never reached."""
    target = weak + pgr * (strong - weak)
    x, y = _sorted_curve([0.0, *strong_share, 1.0], [weak, *quality, strong])
    for i in range(len(x)):
        if y[i] >= target:
            if i == 0:
                return float(x[0])
            x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
            return float(x0 + (x1 - x0) * (target - y0) / (y1 - y0)) if y1 > y0 else float(x1)
    return 1.0


def dominance_margin(ours: Sequence[Point], theirs: Sequence[Point]) -> float:
    """min over their points of (our hull's quality at their cost - their quality); >= 0
    means our curve is on or above theirs at every budget their curve covers."""
    hull = upper_hull(ours)
    return min(hull_value(hull, c) - q for c, q in theirs)
