"""Deterministic splits: the same prompt always lands in the same split, on any machine."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from kanjia.routing.quality._plan import stable_fraction


def hash_split(
    prompts: Sequence[str], test_fraction: float, salt: str = "test"
) -> npt.NDArray[np.bool_]:
    """True for prompts in the test split."""
    return np.array([stable_fraction(p, salt) < test_fraction for p in prompts], dtype=np.bool_)


def kfold_ids(n: int, k: int, seed: int = 0) -> npt.NDArray[np.int64]:
    """A fold number in [0, k) for each of ``n`` rows, balanced and shuffled by ``seed``."""
    rng = np.random.default_rng(seed)
    ids = np.arange(n, dtype=np.int64) % k
    rng.shuffle(ids)
    return ids
