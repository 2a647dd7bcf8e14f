"""The quality router the gateway calls: per-model probability of a good answer from the
prompt and task, the two decision rules, and the per-task plan of cascades."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kanjia.routing.quality._cascade import AnswerChecker, CascadePolicy, CascadeRun, feature_dim
from kanjia.routing.quality._decide import pick_by_target, pick_by_weight
from kanjia.routing.quality._features import FeatureSpace
from kanjia.routing.quality._logistic import LinearHeads, sigmoid
from kanjia.routing.quality._plan import ANY_TASK, TaskLevels, route_only_plan
from kanjia.routing.quality._storage import StoredRouter, read_router, write_router

FloatArray = npt.NDArray[np.float64]
DEFAULT_WEIGHT = 0.9


@dataclass(frozen=True)
class QualityRouter:
    features: FeatureSpace
    heads: LinearHeads
    model_names: tuple[str, ...]
    expected_cost: Mapping[str, FloatArray]  # task (or "*") -> mean cost per model
    cost_scale: float
    plans: Mapping[str, TaskLevels] = field(default_factory=dict)
    cascades: Mapping[str, tuple[CascadePolicy, ...]] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)
    #: runs answers' code for code-check cascades (offline evaluation only: the gateway
    #: never sets one); without one they call their most accurate model alone
    checker: AnswerChecker | None = field(default=None, compare=False)

    # -- loading -----------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> QualityRouter:
        s = read_router(Path(path))
        return cls(s.features, s.heads, s.model_names, s.expected_cost, s.cost_scale,
                   s.plans, s.cascades, s.info)

    def save(self, path: str | Path) -> None:
        stored = StoredRouter(self.features, self.heads, self.model_names, self.expected_cost,
                              self.cost_scale, self.plans, self.cascades, self.info)
        write_router(stored, Path(path))

    def with_checker(self, checker: AnswerChecker | None) -> QualityRouter:
        """This router, running answers' code with ``checker`` (``None``: never)."""
        return replace(self, checker=checker)

    # -- prediction --------------------------------------------------------------------
    @property
    def models(self) -> tuple[str, ...]:
        return self.model_names

    def logits(self, prompt: str, task: str | None = None) -> FloatArray:
        index, values = self.features.transform_one(prompt, task)
        out: FloatArray = values @ self.heads.weights[index] + self.heads.bias
        return out

    def predict_array(self, prompt: str, task: str | None = None) -> FloatArray:
        return sigmoid(self.logits(prompt, task))

    def predict(self, prompt: str, task: str | None = None) -> dict[str, float]:
        """Probability that each model answers this prompt well."""
        proba = self.predict_array(prompt, task)
        return {m: float(p) for m, p in zip(self.model_names, proba, strict=True)}

    # -- decisions ---------------------------------------------------------------------
    def choose(
        self,
        prompt: str,
        candidates: Sequence[tuple[str, float]],
        quality_target: float,
        task: str | None = None,
    ) -> str:
        """The cheapest candidate (model, expected cost) whose predicted quality reaches
        ``quality_target``; if none does, the most likely to answer well. Models the router
        was not trained on count as quality 0."""
        if not candidates:
            raise ValueError("no candidates")
        quality = self._candidate_quality(prompt, candidates, task)
        costs = [c for _, c in candidates]
        return candidates[pick_by_target(quality, costs, quality_target)][0]

    def choose_weighted(
        self,
        prompt: str,
        candidates: Sequence[tuple[str, float]],
        weight: float = DEFAULT_WEIGHT,
        task: str | None = None,
    ) -> str:
        """The candidate maximising ``weight * quality - (1 - weight) * cost / cost_scale``."""
        if not candidates:
            raise ValueError("no candidates")
        quality = self._candidate_quality(prompt, candidates, task)
        costs = [c for _, c in candidates]
        return candidates[pick_by_weight(quality, costs, weight, self.cost_scale)][0]

    def _candidate_quality(
        self, prompt: str, candidates: Sequence[tuple[str, float]], task: str | None
    ) -> list[float]:
        proba = self.predict_array(prompt, task)
        index = {m: j for j, m in enumerate(self.model_names)}
        return [float(proba[index[m]]) if m in index else 0.0 for m, _ in candidates]

    def costs_for(self, task: str | None) -> FloatArray:
        key = task if task is not None and task in self.expected_cost else ANY_TASK
        return self.expected_cost[key]

    # -- the cascade objective ---------------------------------------------------------
    @property
    def plan_weights(self) -> tuple[float, ...]:
        """The weights at which the plan changes (the levels of the combined curve)."""
        found = {c.weight for plan in self.plans.values() for c in plan.choices}
        return tuple(sorted(found))

    def plan_for(self, task: str | None) -> tuple[str, TaskLevels]:
        if task is not None and task in self.plans:
            return task, self.plans[task]
        return ANY_TASK, self.plans.get(ANY_TASK, route_only_plan())

    def start(
        self, prompt: str, task: str | None = None, weight: float = DEFAULT_WEIGHT
    ) -> CascadeRun:
        """Begin one request under the task's plan at quality ``weight``: a one-call route
        or a cascade. Drive it with ``next_model`` / ``observe`` / ``answer``."""
        key, plan = self.plan_for(task)
        route_weight, cascade = plan.at(weight).resolve(prompt)
        logits = self.logits(prompt, task)
        if cascade >= 0:
            policy = self.cascades[key][cascade]
            index = [self.model_names.index(m) for m in policy.chain]
            return CascadeRun(policy, [float(logits[j]) for j in index], prompt, self.checker)
        costs = self.costs_for(task)
        pick = pick_by_weight(list(sigmoid(logits)), list(costs), route_weight, self.cost_scale)
        return CascadeRun(
            single_model_policy(self.model_names[pick]), [float(logits[pick])], prompt
        )


def single_model_policy(model: str) -> CascadePolicy:
    dim = feature_dim(1, 0)
    return CascadePolicy((model,), (), (LinearHeads(np.zeros((dim, 1)), np.zeros(1)),), ())
