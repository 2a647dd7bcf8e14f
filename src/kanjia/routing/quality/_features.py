"""Prompt + task -> a sparse feature vector: TF-IDF over hashed n-grams of the prompt's end,
a task one-hot and a few shape numbers. Pure Python/NumPy, so a single prompt is cheap.
Fitting the IDF and featurising many prompts at once is the lab's (``kanjia.lab``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kanjia.routing.quality._text import N_SHAPE, hashed_counts, shape_features

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FeatureSpace:
    """Columns: ``[0, n_buckets)`` n-grams, then one per known task, then shape numbers."""

    n_buckets: int
    tail_chars: int
    tasks: tuple[str, ...]
    idf: FloatArray

    @property
    def dim(self) -> int:
        return self.n_buckets + len(self.tasks) + N_SHAPE

    def transform_one(self, prompt: str, task: str | None) -> tuple[IntArray, FloatArray]:
        counts = hashed_counts(prompt[-self.tail_chars :], self.n_buckets)
        index = list(counts)
        values = [(1.0 + math.log(c)) * float(self.idf[b]) for b, c in counts.items()]
        norm = math.sqrt(sum(v * v for v in values)) or 1.0
        values = [v / norm for v in values]
        if task is not None and task in self.tasks:
            index.append(self.n_buckets + self.tasks.index(task))
            values.append(1.0)
        base = self.n_buckets + len(self.tasks)
        for k, v in enumerate(shape_features(prompt)):
            if v:
                index.append(base + k)
                values.append(v)
        return np.array(index, dtype=np.int64), np.array(values, dtype=np.float64)
