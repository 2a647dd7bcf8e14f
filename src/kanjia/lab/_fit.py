"""Fitting :class:`LinearHeads`: all heads over the same features together, by one L-BFGS
run on the summed L2-regularised log-loss (scikit-learn's ``C`` convention: ``C * loss +
|w|^2 / 2``); soft labels in [0, 1] are used as they are. One joint fit is a few sparse
products per iteration, so refitting for folds and regularisation grids stays cheap."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import minimize

from kanjia.routing.quality._logistic import LinearHeads, sigmoid

FloatArray = npt.NDArray[np.float64]
Matrix: TypeAlias = sp.csr_matrix | FloatArray

MAX_ITER = 100


def fit_heads(x: Matrix, y: FloatArray, c: float, max_iter: int = MAX_ITER) -> LinearHeads:
    """One L2 logistic head per column of ``y`` (rows, k), labels in [0, 1]."""
    n, dim = x.shape
    k = y.shape[1]
    rate = np.clip((y.sum(axis=0) + 0.5) / (n + 1.0), 1e-4, 1 - 1e-4)
    bias0 = np.log(rate / (1 - rate))
    if n == 0:
        return LinearHeads(np.zeros((dim, k)), bias0)
    xt: Matrix = sp.csr_matrix(x.T) if sp.issparse(x) else np.asarray(x).T

    def loss(theta: FloatArray) -> tuple[float, FloatArray]:
        w = theta[: dim * k].reshape(dim, k)
        b = theta[dim * k :]
        z = np.asarray(x @ w) + b
        # log(1 + e^z) - y z, stably
        value = float(np.sum(np.logaddexp(0.0, z) - y * z)) * c + 0.5 * float(np.sum(w * w))
        r = (sigmoid(z) - y) * c
        grad_w = np.asarray(xt @ r) + w
        return value, np.concatenate([grad_w.ravel(), r.sum(axis=0)])

    theta0 = np.concatenate([np.zeros(dim * k), bias0])
    result = minimize(
        loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter, "gtol": 1e-4}
    )
    theta = np.asarray(result.x, dtype=np.float64)
    return LinearHeads(theta[: dim * k].reshape(dim, k).copy(), theta[dim * k :].copy())
