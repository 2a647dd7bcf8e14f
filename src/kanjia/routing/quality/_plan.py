"""Which policy each task uses at each quality weight: the per-task Lagrangian choice.

Maximising ``weight * quality - (1 - weight) * cost / cost_scale`` over all requests splits
into one independent choice per task, so each task picks, at each weight, the best of its
candidates (single models, the prompt router at some weight, cascades) on the train split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kanjia.routing.quality._search import Candidate

#: Quality weights from cost-first to quality-first (lambda = (1 - w) / w, log-spaced).
WEIGHTS: tuple[float, ...] = tuple(float(1.0 / (1.0 + lam)) for lam in np.logspace(2.0, -3.0, 101))
ANY_TASK = "*"


@dataclass(frozen=True)
class Choice:
    """At quality weight ``weight``: either route by the prompt router at ``route_weight``
    (``cascade`` is -1) or run the task's cascade number ``cascade``."""

    weight: float
    route_weight: float
    cascade: int


@dataclass(frozen=True)
class TaskPlan:
    choices: tuple[Choice, ...]

    def at(self, weight: float) -> Choice:
        """The choice made for the weight nearest to ``weight``."""
        return min(self.choices, key=lambda c: (abs(c.weight - weight), c.weight))


#: Quality a cascade must gain per extra model to be preferred: a guard against picking,
#: among thousands of candidates, one that only looked better on the train split.
CASCADE_PENALTY = 0.0


def select(candidates: Sequence[Candidate], weight: float, cost_scale: float) -> Candidate:
    def value(c: Candidate) -> tuple[float, float]:
        quality = c.quality - CASCADE_PENALTY * max(0, len(c.chain) - 1)
        return (weight * quality - (1.0 - weight) * c.cost / cost_scale, -c.cost)

    return max(candidates, key=value)


def route_only_plan() -> TaskPlan:
    return TaskPlan(tuple(Choice(w, w, -1) for w in WEIGHTS))
