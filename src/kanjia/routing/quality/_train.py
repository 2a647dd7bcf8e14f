"""``router train``: fit the prompt router, search cascades, and choose per task, all on the
train split. A validation carve of the train split picks the regularisation; K-fold
out-of-fold predictions on the train split judge the cascades and the per-task plan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from kanjia.routing.quality._cascade import CascadePolicy
from kanjia.routing.quality._dataset import Dataset
from kanjia.routing.quality._decide import picks_by_weight
from kanjia.routing.quality._features import FeatureSpace
from kanjia.routing.quality._logistic import LinearHeads, fit_heads
from kanjia.routing.quality._plan import ANY_TASK, WEIGHTS, Choice, TaskPlan, select
from kanjia.routing.quality._router import QualityRouter
from kanjia.routing.quality._search import Candidate, cascade_candidates, fit_steps
from kanjia.routing.quality._split import hash_split, kfold_ids

FloatArray = npt.NDArray[np.float64]
C_GRID = (0.5, 2.0, 8.0)


@dataclass(frozen=True)
class TrainOptions:
    folds: int = 5
    seed: int = 0
    n_buckets: int = 1 << 16
    cascades: bool = True
    max_chain: int = 3


def _as_stored(heads: LinearHeads) -> LinearHeads:
    """Round to what the file keeps, so a saved and reloaded router predicts identically."""
    return LinearHeads(
        heads.weights.astype(np.float32).astype(np.float64),
        heads.bias.astype(np.float64),
    )


def _log_loss(y: FloatArray, p: FloatArray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def choose_c(x: sp.csr_matrix, y: FloatArray, prompts: tuple[str, ...]) -> float:
    val = hash_split(prompts, 0.2, salt="validation")
    if val.all() or not val.any():
        return C_GRID[1]
    losses = []
    for c in C_GRID:
        heads = fit_heads(x[~val], y[~val], c)
        losses.append(_log_loss(y[val], heads.proba(x[val])))
    return C_GRID[int(np.argmin(losses))]


def out_of_fold_logits(
    x: sp.csr_matrix, y: FloatArray, folds: npt.NDArray[np.int64], c: float
) -> FloatArray:
    out = np.zeros_like(y)
    for f in np.unique(folds):
        test = folds == f
        out[test] = fit_heads(x[~test], y[~test], c).logits(x[test])
    return out


def route_candidates(
    logits: FloatArray, expected: FloatArray, quality: FloatArray, cost: FloatArray, scale: float
) -> list[Candidate]:
    proba = 1.0 / (1.0 + np.exp(-logits))
    out = []
    rows = np.arange(len(quality))
    for w in WEIGHTS:
        pick = picks_by_weight(proba, np.broadcast_to(expected, proba.shape), w, scale)
        out.append(
            Candidate(
                "route",
                (),
                (),
                w,
                float(quality[rows, pick].mean()),
                float(cost[rows, pick].mean()),
            )
        )
    return out


def train_router(
    data: Dataset,
    options: TrainOptions = TrainOptions(),
    log: Callable[[str], None] = lambda _: None,
) -> QualityRouter:
    train = data.train()
    if len(train) == 0:
        raise ValueError("the train split is empty")
    fitted = FeatureSpace.fit(train.prompts, train.tasks, n_buckets=options.n_buckets)
    features = replace(fitted, idf=fitted.idf.astype(np.float32).astype(np.float64))
    x = features.transform(train.prompts, train.tasks)
    c = choose_c(x, train.quality, train.prompts)
    log(f"prompt router: C={c} (validation log-loss), {x.shape[1]} features")
    heads = _as_stored(fit_heads(x, train.quality, c))
    folds = kfold_ids(len(train), options.folds, options.seed)
    oof = out_of_fold_logits(x, train.quality, folds, c)

    expected = {ANY_TASK: train.cost.mean(axis=0)}
    for task in train.task_names:
        expected[task] = train.cost[train.task_mask(task)].mean(axis=0)
    scale = float(expected[ANY_TASK].max())

    plans: dict[str, TaskPlan] = {}
    cascades: dict[str, tuple[CascadePolicy, ...]] = {}
    for task in train.task_names:
        mask = train.task_mask(task)
        rows = train.subset(mask)
        candidates = route_candidates(oof[mask], expected[task], rows.quality, rows.cost, scale)
        keys: tuple[str, ...] = ()
        if options.cascades and rows.has_responses().all():
            keys, found = cascade_candidates(
                rows.responses, oof[mask], rows.quality, rows.cost, folds[mask], options.max_chain
            )
            candidates += found
        chosen = [select(candidates, w, scale) for w in WEIGHTS]
        chains = sorted({(ch.chain, ch.thresholds) for ch in chosen if ch.kind == "cascade"})
        policies = []
        for chain, thresholds in chains:
            steps = fit_steps(keys, rows.responses, oof[mask], rows.quality, chain)
            policies.append(
                CascadePolicy(tuple(train.models[j] for j in chain), thresholds, steps, keys)
            )
        index = {key: i for i, key in enumerate(chains)}
        plans[task] = TaskPlan(
            tuple(
                Choice(
                    w,
                    ch.weight if ch.kind == "route" else w,
                    index[(ch.chain, ch.thresholds)] if ch.kind == "cascade" else -1,
                )
                for w, ch in zip(WEIGHTS, chosen, strict=True)
            )
        )
        cascades[task] = tuple(policies)
        log(f"{task}: {len(candidates)} candidate policies, {len(policies)} cascades chosen")
    return QualityRouter(
        features=features,
        heads=heads,
        model_names=train.models,
        expected_cost=expected,
        cost_scale=scale,
        plans=plans,
        cascades=cascades,
        info={"c": c, "folds": options.folds, "train_rows": len(train)},
    )
