"""The two decision rules, for one request (run time) and for many (evaluation).

* target: the cheapest candidate whose predicted quality reaches ``quality_target``; if none
  does, the one with the highest predicted quality (cheapest among equals).
* weight: the candidate maximising ``weight * quality - (1 - weight) * cost / cost_scale``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def pick_by_target(quality: Sequence[float], cost: Sequence[float], target: float) -> int:
    best = -1
    for j, (q, c) in enumerate(zip(quality, cost, strict=True)):
        if q >= target and (best < 0 or (c, -q) < (cost[best], -quality[best])):
            best = j
    if best >= 0:
        return best
    return min(range(len(quality)), key=lambda j: (-quality[j], cost[j]))


def pick_by_weight(
    quality: Sequence[float], cost: Sequence[float], weight: float, cost_scale: float
) -> int:
    values = [
        weight * q - (1.0 - weight) * c / cost_scale for q, c in zip(quality, cost, strict=True)
    ]
    return max(range(len(values)), key=lambda j: (values[j], -cost[j]))


def picks_by_target(quality: FloatArray, cost: FloatArray, target: float) -> IntArray:
    """Row-wise :func:`pick_by_target` for (rows, models) arrays."""
    meets = quality >= target
    masked_cost = np.where(meets, cost, np.inf)
    # lexicographic (cost, -quality) among those meeting the target
    order = np.lexsort((-quality, masked_cost), axis=1)[:, 0]
    fallback = np.lexsort((cost, -quality), axis=1)[:, 0]
    return np.where(meets.any(axis=1), order, fallback).astype(np.int64)


def picks_by_weight(
    quality: FloatArray, cost: FloatArray, weight: float, cost_scale: float
) -> IntArray:
    values = weight * quality - (1.0 - weight) * cost / cost_scale
    return np.lexsort((cost, -values), axis=1)[:, 0].astype(np.int64)
