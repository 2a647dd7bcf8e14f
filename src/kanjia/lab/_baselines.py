"""Baselines on the test split: each single model, the per-task router (one model per task,
chosen on train), random mixes of two models, and the oracle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kanjia.lab._dataset import Dataset
from kanjia.lab._metrics import Point
from kanjia.routing.quality._plan import WEIGHTS

#: The per-task router's headline point: weight 0.9 reproduces the reference choice on
#: RouterBench (ARC -> Yi-34B, MBPP -> gpt-3.5, Winogrande -> gpt-4).
TASK_LABEL_WEIGHT = 0.9


@dataclass(frozen=True)
class Baseline:
    accuracy: float
    mean_cost: float
    curve: tuple[tuple[float, float, float], ...] = ()  # (threshold, accuracy, mean_cost)

    def points(self) -> list[Point]:
        if self.curve:
            return [(c, a) for _, a, c in self.curve]
        return [(self.mean_cost, self.accuracy)]


def single_models(test: Dataset) -> dict[str, Baseline]:
    return {
        m: Baseline(float(test.quality[:, j].mean()), float(test.cost[:, j].mean()))
        for j, m in enumerate(test.models)
    }


def task_label(train: Dataset, test: Dataset, cost_scale: float) -> Baseline:
    """Per task, the model maximising ``w * accuracy - (1 - w) * cost / scale`` on train."""
    points = []
    headline = None
    rows = np.arange(len(test))
    for w in WEIGHTS:
        pick = np.zeros(len(test), dtype=np.int64)
        fallback = _best(train.quality.mean(0), train.cost.mean(0), w, cost_scale)
        pick[:] = fallback
        for task in test.task_names:
            tmask = train.task_mask(task)
            if tmask.any():
                j = _best(train.quality[tmask].mean(0), train.cost[tmask].mean(0), w, cost_scale)
                pick[test.task_mask(task)] = j
        acc, cost = float(test.quality[rows, pick].mean()), float(test.cost[rows, pick].mean())
        points.append((w, acc, cost))
        if headline is None or abs(w - TASK_LABEL_WEIGHT) < abs(headline[0] - TASK_LABEL_WEIGHT):
            headline = (w, acc, cost)
    assert headline is not None
    return Baseline(headline[1], headline[2], tuple(points))


def _best(q: np.ndarray, c: np.ndarray, w: float, scale: float) -> int:
    return int(np.lexsort((c, -(w * q - (1 - w) * c / scale)))[0])


def random_mix(train: Dataset, test: Dataset) -> Baseline:
    """Random per-request mixes of the cheapest and the most accurate model (on train);
    the headline is the 50/50 mix."""
    cheap = int(np.argmin(train.cost.mean(0)))
    best = int(np.argmax(train.quality.mean(0)))
    qa, qb = test.quality[:, cheap].mean(), test.quality[:, best].mean()
    ca, cb = test.cost[:, cheap].mean(), test.cost[:, best].mean()
    curve = tuple(
        (float(s), float((1 - s) * qa + s * qb), float((1 - s) * ca + s * cb))
        for s in np.linspace(0.0, 1.0, 11)
    )
    return Baseline(float((qa + qb) / 2), float((ca + cb) / 2), curve)


def oracle(test: Dataset, cost_scale: float) -> Baseline:
    """Knowing every outcome: per prompt, the model maximising ``w * score - (1 - w) *
    cost / scale`` (unknowable in practice). The headline is the cheapest model with the
    best score on each prompt; the curve sweeps ``w``."""
    best = test.quality.max(axis=1, keepdims=True)
    cost = np.where(test.quality >= best, test.cost, np.inf).min(axis=1)
    rows = np.arange(len(test))
    curve = []
    for w in WEIGHTS:
        value = w * test.quality - (1 - w) * test.cost / cost_scale
        pick = np.lexsort((test.cost, -value), axis=1)[:, 0]
        curve.append(
            (w, float(test.quality[rows, pick].mean()), float(test.cost[rows, pick].mean()))
        )
    return Baseline(float(best.mean()), float(cost.mean()), tuple(curve))
