"""Prompt + task -> a sparse feature vector: TF-IDF over hashed n-grams of the prompt's end,
a task one-hot and a few shape numbers. Pure Python/NumPy, so a single prompt is cheap."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

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

    @classmethod
    def fit(
        cls,
        prompts: Sequence[str],
        tasks: Sequence[str],
        n_buckets: int = 1 << 16,
        tail_chars: int = 2048,
    ) -> FeatureSpace:
        df = np.zeros(n_buckets)
        for prompt in prompts:
            for b in hashed_counts(prompt[-tail_chars:], n_buckets):
                df[b] += 1.0
        idf = np.log((1.0 + len(prompts)) / (1.0 + df)) + 1.0
        return cls(n_buckets, tail_chars, tuple(sorted(set(tasks))), idf)

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

    def transform(self, prompts: Sequence[str], tasks: Sequence[str | None]) -> sp.csr_matrix:
        rows: list[IntArray] = []
        vals: list[FloatArray] = []
        for prompt, task in zip(prompts, tasks, strict=True):
            i, v = self.transform_one(prompt, task)
            rows.append(i)
            vals.append(v)
        indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
        indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        data = np.concatenate(vals) if vals else np.zeros(0)
        return sp.csr_matrix((data, indices, indptr), shape=(len(rows), self.dim))
