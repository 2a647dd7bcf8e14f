"""Which policy each task uses at each level of the quality/cost trade-off.

Each task has candidate policies (single models, the prompt router at some weight,
cascades), each with its out-of-fold quality and cost on the task's train rows. Only the
upper convex hull of a task's candidates is worth using, and the best use of a budget
across tasks is a convex-hull combination: starting from every task's cheapest hull point,
take the hull segments of all tasks in order of falling marginal quality per cost. Each
segment is walked in steps of :data:`FRACTIONS`: a stable hash of the prompt sends that
share of the task's requests to the segment's dearer policy (the "zero router" mix of
RouterBench), so the overall curve covers the budgets between hull vertices too.

A level's ``weight`` is the Lagrangian weight ``w`` of ``w * quality - (1 - w) * cost /
cost_scale`` at which the level is optimal, so ``start(weight=...)`` keeps its meaning.
The gateway reads a plan; the lab (``kanjia.lab._levels``) computes the hulls and levels."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

#: Quality weights from cost-first to quality-first (lambda = (1 - w) / w, log-spaced).
WEIGHTS: tuple[float, ...] = tuple(float(1.0 / (1.0 + lam)) for lam in np.logspace(2.0, -3.0, 101))
ANY_TASK = "*"
FRACTIONS = tuple(k / 10 for k in range(1, 11))
MIX_SALT = "plan-mix"


@dataclass(frozen=True)
class Choice:
    """At quality weight ``weight``: route by the prompt router at ``route_weight`` (when
    ``cascade`` is -1) or run the task's cascade number ``cascade``; the share
    ``fraction`` of prompts (by a stable hash) takes the alternative instead."""

    weight: float
    route_weight: float
    cascade: int
    alt_route_weight: float = 0.0
    alt_cascade: int = -1
    fraction: float = 0.0

    def resolve(self, prompt: str) -> tuple[float, int]:
        """(route weight, cascade) for this prompt."""
        if self.fraction > 0.0 and stable_fraction(prompt, MIX_SALT) < self.fraction:
            return self.alt_route_weight, self.alt_cascade
        return self.route_weight, self.cascade


@dataclass(frozen=True)
class TaskLevels:
    choices: tuple[Choice, ...]

    def at(self, weight: float) -> Choice:
        """The choice made for the weight nearest to ``weight``."""
        return min(self.choices, key=lambda c: (abs(c.weight - weight), c.weight))


def stable_fraction(text: str, salt: str = "") -> float:
    """A number in [0, 1) fixed by the text (CRC-32, not Python's salted hash)."""
    return zlib.crc32((salt + text).encode("utf-8")) / 2**32


def route_only_plan() -> TaskLevels:
    return TaskLevels(tuple(Choice(w, w, -1) for w in WEIGHTS))
