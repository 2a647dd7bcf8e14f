"""Logistic models fitted with scikit-learn, kept as plain coefficient arrays so that a
prediction is one gather-and-sum in NumPy (no estimator objects at run time)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

FloatArray = npt.NDArray[np.float64]
Matrix: TypeAlias = sp.csr_matrix | FloatArray


@dataclass(frozen=True)
class LinearHeads:
    """``k`` logistic heads over the same features: ``weights`` (dim, k), ``bias`` (k,)."""

    weights: FloatArray
    bias: FloatArray

    def logits(self, x: Matrix) -> FloatArray:
        return np.asarray(x @ self.weights) + self.bias

    def proba(self, x: Matrix) -> FloatArray:
        return sigmoid(self.logits(x))


def sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))
    return out


def fit_head(x: Matrix, y: FloatArray, c: float) -> tuple[FloatArray, float]:
    """One L2 logistic regression on soft labels ``y`` in [0, 1]."""
    n = x.shape[0]
    rate = float(np.clip((y.sum() + 0.5) / (n + 1.0), 1e-4, 1 - 1e-4))
    if n == 0 or (np.all(y == y[0]) and y[0] in (0.0, 1.0)):
        return np.zeros(x.shape[1]), float(np.log(rate / (1 - rate)))
    hard = np.all((y == 0.0) | (y == 1.0))
    if hard:
        xs, ys, ws = x, y.astype(int), None
    else:  # a soft label q becomes a positive row of weight q and a negative of weight 1-q
        xs = sp.vstack([x, x]).tocsr() if sp.issparse(x) else np.vstack([x, x])
        ys = np.concatenate([np.ones(n, dtype=int), np.zeros(n, dtype=int)])
        ws = np.concatenate([y, 1.0 - y])
    model = LogisticRegression(C=c, max_iter=300, tol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(xs, ys, sample_weight=ws)
    return np.asarray(model.coef_[0], dtype=np.float64), float(model.intercept_[0])


def fit_heads(x: Matrix, y: FloatArray, c: float) -> LinearHeads:
    """One head per column of ``y`` (rows, k)."""
    coefs, biases = [], []
    for k in range(y.shape[1]):
        w, b = fit_head(x, y[:, k], c)
        coefs.append(w)
        biases.append(b)
    return LinearHeads(np.column_stack(coefs), np.array(biases))
