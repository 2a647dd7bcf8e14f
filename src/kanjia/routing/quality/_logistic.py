"""Logistic models kept as plain coefficient arrays, so that a prediction is one
gather-and-sum in NumPy (no estimator objects at run time). Fitting them is the lab's
(``kanjia.lab``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LinearHeads:
    """``k`` logistic heads over the same features: ``weights`` (dim, k), ``bias`` (k,)."""

    weights: FloatArray
    bias: FloatArray

    def logits(self, x: FloatArray) -> FloatArray:
        return np.asarray(x @ self.weights) + self.bias

    def proba(self, x: FloatArray) -> FloatArray:
        return sigmoid(self.logits(x))


def sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))
    return out
