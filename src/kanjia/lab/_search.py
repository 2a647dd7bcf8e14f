"""Offline search for cascades on the train split: for each chain of up to three models and
each pair of stop thresholds, the quality and cost it would have had, from out-of-fold
predictions (the scorers never see the rows they are judged on)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kanjia.lab._fit import fit_heads
from kanjia.routing.quality._cascade import state_features
from kanjia.routing.quality._logistic import LinearHeads

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Responses = Sequence[Sequence[str | None]]

THRESHOLDS = (0.35, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 2.0)
SCORER_C = 1.0


@dataclass(frozen=True)
class Candidate:
    """A policy and how it did on the task's train rows (out of fold)."""

    kind: str  # "cascade" or "route"
    chain: tuple[int, ...]
    thresholds: tuple[float, ...]
    weight: float
    quality: float
    cost: float


def key_vocabulary(
    responses: Responses, max_keys: int = 8, min_share: float = 0.02
) -> tuple[str, ...]:
    """The answer keys common enough to get their own feature (e.g. the choice letters)."""
    from kanjia.routing.quality._answers import answer_key

    counts: Counter[str] = Counter()
    total = 0
    for row in responses:
        for text in row:
            total += 1
            key = answer_key(text)
            if key is not None:
                counts[key] += 1
    common = [k for k, n in counts.most_common(max_keys) if n >= min_share * max(total, 1)]
    return tuple(sorted(common))


def candidate_models(
    quality: FloatArray, cost: FloatArray, max_models: int = 7, margin: float = 0.1
) -> list[int]:
    """Models worth putting in a chain, cheapest first: drop those beaten by ``margin`` in
    quality by a cheaper model, then keep the ``max_models`` best."""
    q, c = quality.mean(axis=0), cost.mean(axis=0)
    keep = [
        j
        for j in range(len(q))
        if not any(c[k] <= c[j] and q[k] >= q[j] + margin for k in range(len(q)) if k != j)
    ]
    keep = sorted(keep, key=lambda j: -q[j])[:max_models]
    return sorted(keep, key=lambda j: c[j])


def prefix_matrix(
    keys: tuple[str, ...], responses: Responses, prior: FloatArray, prefix: tuple[int, ...]
) -> FloatArray:
    rows = [
        state_features(keys, [row[j] for j in prefix], prior[i, list(prefix)].tolist())
        for i, row in enumerate(responses)
    ]
    return np.vstack(rows)


def out_of_fold(x: FloatArray, y: FloatArray, folds: IntArray) -> FloatArray:
    out = np.zeros_like(y)
    for f in np.unique(folds):
        test = folds == f
        heads = fit_heads(x[~test], y[~test], SCORER_C)
        out[test] = heads.proba(x[test])
    return out


def fit_steps(
    keys: tuple[str, ...],
    responses: Responses,
    prior: FloatArray,
    quality: FloatArray,
    chain: tuple[int, ...],
) -> tuple[LinearHeads, ...]:
    """The scorers of a chosen chain, fitted on all the rows."""
    steps = []
    for i in range(len(chain)):
        prefix = chain[: i + 1]
        x = prefix_matrix(keys, responses, prior, prefix)
        steps.append(fit_heads(x, quality[:, list(prefix)], SCORER_C))
    return tuple(steps)


def simulate(
    step_proba: Sequence[FloatArray],
    chain: tuple[int, ...],
    thresholds: tuple[float, ...],
    quality: FloatArray,
    cost: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Per row: quality of the answer returned and money spent, for one threshold setting."""
    n = quality.shape[0]
    done = np.zeros(n, dtype=bool)
    got_q = np.zeros(n)
    spent = np.zeros(n)
    for i, proba in enumerate(step_proba):
        active = ~done
        spent[active] += cost[active, chain[i]]
        best = np.argmax(proba, axis=1)
        stop = active & ((i == len(chain) - 1) | (proba.max(axis=1) >= (*thresholds, 0.0)[i]))
        picked = np.array(chain)[best]
        got_q[stop] = quality[stop, picked[stop]]
        done |= stop
    return got_q, spent


def cascade_candidates(
    responses: Responses,
    prior: FloatArray,
    quality: FloatArray,
    cost: FloatArray,
    folds: IntArray,
    max_len: int = 3,
) -> tuple[tuple[str, ...], list[Candidate]]:
    keys = key_vocabulary(responses)
    models = candidate_models(quality, cost)
    cache: dict[tuple[int, ...], FloatArray] = {}

    def proba(prefix: tuple[int, ...]) -> FloatArray:
        if prefix not in cache:
            x = prefix_matrix(keys, responses, prior, prefix)
            cache[prefix] = out_of_fold(x, quality[:, list(prefix)], folds)
        return cache[prefix]

    out: list[Candidate] = []
    for length in range(1, max_len + 1):
        for chain in itertools.combinations(models, length):
            steps = [proba(chain[: i + 1]) for i in range(length)]
            for ts in itertools.product(THRESHOLDS, repeat=length - 1):
                q, c = simulate(steps, chain, ts, quality, cost)
                out.append(Candidate("cascade", chain, ts, 0.0, float(q.mean()), float(c.mean())))
    return keys, out
