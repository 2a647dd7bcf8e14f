"""The in-memory form of routing data: per prompt, per model, quality and cost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Dataset:
    """Outcomes of several models on the same prompts.

    ``quality[i, j]`` is model ``j``'s score on prompt ``i`` in [0, 1] (1 = correct);
    ``cost[i, j]`` what that call cost, in ``currency``. ``responses[i][j]`` is the
    answer text, or ``None`` where the data has none. ``is_test`` marks the test split.
    """

    prompts: tuple[str, ...]
    tasks: tuple[str, ...]
    models: tuple[str, ...]
    quality: FloatArray
    cost: FloatArray
    responses: tuple[tuple[str | None, ...], ...]
    is_test: BoolArray
    currency: str = "USD"
    cost_source: str = "per-call costs in the data"

    def __post_init__(self) -> None:
        n, m = len(self.prompts), len(self.models)
        if len(self.tasks) != n or len(self.responses) != n or self.is_test.shape != (n,):
            raise ValueError("every per-prompt field needs one entry per prompt")
        if self.quality.shape != (n, m) or self.cost.shape != (n, m):
            raise ValueError("quality and cost must be (prompts, models) arrays")

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, mask: BoolArray | npt.NDArray[np.int64]) -> Dataset:
        """The rows selected by a boolean mask or an index array."""
        index = np.flatnonzero(mask) if mask.dtype == np.bool_ else np.asarray(mask)
        return Dataset(
            prompts=tuple(self.prompts[i] for i in index),
            tasks=tuple(self.tasks[i] for i in index),
            models=self.models,
            quality=self.quality[index],
            cost=self.cost[index],
            responses=tuple(self.responses[i] for i in index),
            is_test=self.is_test[index],
            currency=self.currency,
            cost_source=self.cost_source,
        )

    def train(self) -> Dataset:
        return self.subset(~self.is_test)

    def test(self) -> Dataset:
        return self.subset(self.is_test)

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.tasks)))

    def task_mask(self, task: str) -> BoolArray:
        return np.array([t == task for t in self.tasks], dtype=np.bool_)

    def has_responses(self) -> BoolArray:
        """Per row: whether every model's answer text is present."""
        return np.array([all(r is not None for r in row) for row in self.responses], dtype=bool)

    @staticmethod
    def concat(parts: list[Dataset]) -> Dataset:
        if not parts:
            raise ValueError("no data")
        models = parts[0].models
        if any(p.models != models for p in parts):
            raise ValueError("all parts must have the same models in the same order")
        return Dataset(
            prompts=tuple(x for p in parts for x in p.prompts),
            tasks=tuple(x for p in parts for x in p.tasks),
            models=models,
            quality=np.vstack([p.quality for p in parts]),
            cost=np.vstack([p.cost for p in parts]),
            responses=tuple(x for p in parts for x in p.responses),
            is_test=np.concatenate([p.is_test for p in parts]),
            currency=parts[0].currency,
            cost_source=parts[0].cost_source,
        )
