"""Replay a trained router on recorded outcomes: which model answers each prompt, what it
scores, and which calls were paid for. Cascades run through the same ``CascadeRun`` the
gateway uses, fed with the answers recorded in the data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kanjia.lab._dataset import Dataset
from kanjia.lab._featurize import transform
from kanjia.routing.quality._cascade import CascadeRun
from kanjia.routing.quality._decide import picks_by_target, picks_by_weight
from kanjia.routing.quality._logistic import sigmoid
from kanjia.routing.quality._router import QualityRouter

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Outcome:
    quality: FloatArray  # (rows,) score of the answer returned
    cost: FloatArray  # (rows,) money spent on all calls
    called: BoolArray  # (rows, models) which models were called


def router_logits(router: QualityRouter, data: Dataset) -> FloatArray:
    x = transform(router.features, data.prompts, data.tasks)
    return router.heads.logits(x)


def _columns(router: QualityRouter, data: Dataset) -> list[int]:
    if set(router.models) != set(data.models):
        raise ValueError("the router and the data have different models")
    return [router.models.index(m) for m in data.models]


def _from_picks(data: Dataset, picks: npt.NDArray[np.int64]) -> Outcome:
    rows = np.arange(len(data))
    called = np.zeros(data.quality.shape, dtype=bool)
    called[rows, picks] = True
    return Outcome(data.quality[rows, picks], data.cost[rows, picks], called)


def _expected_costs(router: QualityRouter, data: Dataset, cols: list[int]) -> FloatArray:
    return np.vstack([router.costs_for(t)[cols] for t in data.tasks])


def route_by_weight(router: QualityRouter, data: Dataset, logits: FloatArray, w: float) -> Outcome:
    cols = _columns(router, data)
    proba = sigmoid(logits[:, cols])
    picks = picks_by_weight(proba, _expected_costs(router, data, cols), w, router.cost_scale)
    return _from_picks(data, picks)


def route_by_target(
    router: QualityRouter, data: Dataset, logits: FloatArray, target: float
) -> Outcome:
    cols = _columns(router, data)
    proba = sigmoid(logits[:, cols])
    picks = picks_by_target(proba, _expected_costs(router, data, cols), target)
    return _from_picks(data, picks)


#: (task key, cascade, row) -> (quality, cost, models called): a replay is deterministic.
ReplayCache = dict[tuple[str, int, int], tuple[float, float, tuple[int, ...]]]


def replay(
    router: QualityRouter, data: Dataset, logits: FloatArray, key: str, cascade: int, i: int
) -> tuple[float, float, tuple[int, ...]]:
    """One request through ``CascadeRun`` on the recorded answers: what the returned answer
    scored, the sum of the calls made, and which models were called."""
    position = {m: j for j, m in enumerate(data.models)}
    policy = router.cascades[key][cascade]
    chain_cols = [router.models.index(m) for m in policy.chain]
    run = CascadeRun(
        policy, [float(logits[i, c]) for c in chain_cols], data.prompts[i], router.checker
    )
    calls = []
    spent = 0.0
    while (model := run.next_model()) is not None:
        j = position[model]
        calls.append(j)
        spent += float(data.cost[i, j])
        run.observe(model, data.responses[i][j])
    return float(data.quality[i, position[run.answer()]]), spent, tuple(calls)


def run_plan(
    router: QualityRouter,
    data: Dataset,
    logits: FloatArray,
    w: float,
    cache: ReplayCache | None = None,
) -> Outcome:
    """Each task's chosen policy at quality weight ``w``, every request replayed through
    the run-time path (``Choice.resolve`` and ``CascadeRun``) on the recorded answers."""
    cache = {} if cache is None else cache
    _columns(router, data)
    quality = np.zeros(len(data))
    cost = np.zeros(len(data))
    called = np.zeros(data.quality.shape, dtype=bool)
    for task in data.task_names:
        mask = data.task_mask(task)
        key, plan = router.plan_for(task)
        choice = plan.at(w)
        rows = np.flatnonzero(mask)
        routes: dict[float, list[int]] = {}
        for i in rows:
            route_weight, cascade = choice.resolve(data.prompts[i])
            if cascade < 0:
                routes.setdefault(route_weight, []).append(int(i))
                continue
            entry = (key, cascade, int(i))
            if entry not in cache:
                cache[entry] = replay(router, data, logits, key, cascade, int(i))
            quality[i], cost[i], calls = cache[entry]
            called[i, list(calls)] = True
        for route_weight, members in routes.items():
            idx = np.array(members, dtype=np.int64)
            out = route_by_weight(router, data.subset(idx), logits[idx], route_weight)
            quality[idx], cost[idx], called[idx] = out.quality, out.cost, out.called
    return Outcome(quality, cost, called)
