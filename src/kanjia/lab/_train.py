"""``router train``: fit the prompt router, search cascades, and plan per task, all on the
train split. A validation carve of the train split picks the regularisation; K-fold
out-of-fold predictions on the train split judge every candidate policy, and the plan is
the convex-hull combination of the tasks' best candidates (``_plan``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from kanjia.lab._codecheck import CodeChecker
from kanjia.lab._dataset import Dataset
from kanjia.lab._execsearch import exec_candidates, is_code_task
from kanjia.lab._featurize import fit_features, transform
from kanjia.lab._fit import fit_heads
from kanjia.lab._levels import global_levels, task_hull
from kanjia.lab._search import Candidate, cascade_candidates, fit_steps
from kanjia.lab._split import hash_split, kfold_ids
from kanjia.lab._votesearch import vote_candidates
from kanjia.routing.quality._cascade import CascadePolicy
from kanjia.routing.quality._decide import picks_by_weight
from kanjia.routing.quality._logistic import LinearHeads
from kanjia.routing.quality._plan import (
    ANY_TASK,
    WEIGHTS,
    Choice,
    TaskLevels,
)
from kanjia.routing.quality._router import QualityRouter, single_model_policy
from kanjia.routing.quality._vote import VoteModel

FloatArray = npt.NDArray[np.float64]
C_GRID = (0.5, 2.0, 8.0)


@dataclass(frozen=True)
class TrainOptions:
    folds: int = 5
    seed: int = 0
    n_buckets: int = 1 << 14
    cascades: bool = True
    max_chain: int = 3
    #: search code-check cascades on code tasks (runs the data's answers' code, sandboxed)
    code_checks: bool = False


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


def single_candidates(quality: FloatArray, cost: FloatArray) -> list[Candidate]:
    return [
        Candidate("single", (j,), (), 0.0, float(quality[:, j].mean()), float(cost[:, j].mean()))
        for j in range(quality.shape[1])
    ]


@dataclass(frozen=True)
class _TaskSearch:
    candidates: list[Candidate]
    keys: tuple[str, ...] = ()
    vote: VoteModel | None = None


def _search_task(
    rows: Dataset, oof: FloatArray, expected: FloatArray, scale: float,
    folds: npt.NDArray[np.int64], options: TrainOptions,
) -> _TaskSearch:
    candidates = route_candidates(oof, expected, rows.quality, rows.cost, scale)
    candidates += single_candidates(rows.quality, rows.cost)
    if not options.cascades or not rows.has_responses().all() or len(rows) < 2 * options.folds:
        return _TaskSearch(candidates)
    voted = vote_candidates(rows.prompts, rows.responses, rows.quality, rows.cost, folds)
    if voted is not None:
        return _TaskSearch(candidates + voted.candidates, vote=voted.vote)
    keys, found = cascade_candidates(
        rows.responses, oof, rows.quality, rows.cost, folds, options.max_chain
    )
    if options.code_checks and is_code_task(rows.responses):
        found += exec_candidates(
            rows.responses, rows.quality, rows.cost, CodeChecker(), options.max_chain
        )
    return _TaskSearch(candidates + found, keys=keys)


def _policy(
    c: Candidate, search: _TaskSearch, rows: Dataset, oof: FloatArray
) -> CascadePolicy:
    names = tuple(rows.models[j] for j in c.chain)
    if c.kind == "single":
        return single_model_policy(names[0])
    if c.kind == "vote":
        return CascadePolicy(names, c.thresholds, (), (), vote=search.vote, vote_index=c.chain)
    if c.kind == "exec":
        accuracy = rows.quality.mean(axis=0)
        prior = tuple(float(accuracy[j]) for j in c.chain)
        return CascadePolicy(names, c.thresholds, (), (), check=True, tie_break=prior)
    steps = fit_steps(search.keys, rows.responses, oof, rows.quality, c.chain)
    return CascadePolicy(names, c.thresholds, steps, search.keys)


def train_router(
    data: Dataset,
    options: TrainOptions = TrainOptions(),
    log: Callable[[str], None] = lambda _: None,
) -> QualityRouter:
    train = data.train()
    if len(train) == 0:
        raise ValueError("the train split is empty")
    fitted = fit_features(train.prompts, train.tasks, n_buckets=options.n_buckets)
    features = replace(fitted, idf=fitted.idf.astype(np.float32).astype(np.float64))
    x = transform(features, train.prompts, train.tasks)
    c = choose_c(x, train.quality, train.prompts)
    log(f"prompt router: C={c} (validation log-loss), {x.shape[1]} features")
    heads = _as_stored(fit_heads(x, train.quality, c))
    folds = kfold_ids(len(train), options.folds, options.seed)
    oof = out_of_fold_logits(x, train.quality, folds, c)

    expected = {ANY_TASK: train.cost.mean(axis=0)}
    for task in train.task_names:
        expected[task] = train.cost[train.task_mask(task)].mean(axis=0)
    scale = float(expected[ANY_TASK].max())

    hulls: dict[str, list[Candidate]] = {}
    cascades: dict[str, tuple[CascadePolicy, ...]] = {}
    index: dict[str, dict[Candidate, int]] = {}
    for task in train.task_names:
        mask = train.task_mask(task)
        rows = train.subset(mask)
        search = _search_task(rows, oof[mask], expected[task], scale, folds[mask], options)
        hulls[task] = task_hull(search.candidates, len(rows))
        policies = [h for h in hulls[task] if h.kind != "route"]
        index[task] = {h: i for i, h in enumerate(policies)}
        cascades[task] = tuple(_policy(h, search, rows, oof[mask]) for h in policies)
        kinds = ", ".join(f"{h.kind} {h.quality:.3f}@{h.cost:.3g}" for h in hulls[task])
        log(f"{task}: {len(search.candidates)} candidate policies; hull: {kinds}")
    shares = {t: float(train.task_mask(t).mean()) for t in train.task_names}
    levels = global_levels(hulls, shares, scale)

    def choice(weight: float, task: str, low: Candidate, high: Candidate, f: float) -> Choice:
        def parts(cand: Candidate) -> tuple[float, int]:
            return (cand.weight, -1) if cand.kind == "route" else (weight, index[task][cand])

        (rw, cc), (arw, ac) = parts(low), parts(high)
        return Choice(weight, rw, cc, arw, ac, f)

    plans = {
        task: TaskLevels(tuple(choice(w, task, *mix[task]) for w, mix in levels))
        for task in train.task_names
    }
    return QualityRouter(
        features=features,
        heads=heads,
        model_names=train.models,
        expected_cost=expected,
        cost_scale=scale,
        plans=plans,
        cascades=cascades,
        info={"c": c, "folds": options.folds, "train_rows": len(train), "levels": len(levels)},
    )
