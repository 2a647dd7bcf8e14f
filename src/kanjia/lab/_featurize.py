"""Fitting a :class:`FeatureSpace` on training prompts and featurising many prompts at once
(a sparse matrix, for fitting and evaluation); the gateway featurises one prompt at a time
with ``FeatureSpace.transform_one``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from kanjia.routing.quality._features import FeatureSpace
from kanjia.routing.quality._text import hashed_counts

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def fit_features(
    prompts: Sequence[str],
    tasks: Sequence[str],
    n_buckets: int = 1 << 16,
    tail_chars: int = 2048,
) -> FeatureSpace:
    """The IDF of the hashed n-grams over ``prompts``, and the known tasks."""
    df = np.zeros(n_buckets)
    for prompt in prompts:
        for b in hashed_counts(prompt[-tail_chars:], n_buckets):
            df[b] += 1.0
    idf = np.log((1.0 + len(prompts)) / (1.0 + df)) + 1.0
    return FeatureSpace(n_buckets, tail_chars, tuple(sorted(set(tasks))), idf)


def transform(
    space: FeatureSpace, prompts: Sequence[str], tasks: Sequence[str | None]
) -> sp.csr_matrix:
    """One row per prompt, the same values as ``space.transform_one``."""
    rows: list[IntArray] = []
    vals: list[FloatArray] = []
    for prompt, task in zip(prompts, tasks, strict=True):
        i, v = space.transform_one(prompt, task)
        rows.append(i)
        vals.append(v)
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    data = np.concatenate(vals) if vals else np.zeros(0)
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), space.dim))
