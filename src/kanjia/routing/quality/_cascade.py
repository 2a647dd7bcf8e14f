"""The cascade objective (FrugalGPT / AutoMix style): call the models of a chain one after
another, and after each answer decide from what has been seen whether the best answer so
far is reliable enough to stop. The client gets one answer and is billed for every call.

Three scorers: on choice tasks a vote over the answers' options (``_vote``: agreement of
the called models, weighted by each one's confusion table); on code tasks the share of the
other answers' tests each answer's code passes (an :class:`AnswerChecker`, the lab's
``CodeChecker``, when running code is allowed: offline only); elsewhere logistic heads on
the answers' keys, their agreement, their shape and the prompt-level prior."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from kanjia.routing.quality._answers import answer_key, answer_shape, jaccard, word_set
from kanjia.routing.quality._logistic import LinearHeads
from kanjia.routing.quality._vote import VoteModel, answer_codes

FloatArray = npt.NDArray[np.float64]


class AnswerChecker(Protocol):
    """Scores code answers by running them (``kanjia.lab.CodeChecker``, offline only: the
    gateway never runs a model's code)."""

    def scores(self, responses: Sequence[str | None]) -> list[float]:
        """Per answer: the share of the other answers' tests its code passes; NaN when
        the other answers wrote no tests."""
        ...


def rank_answers(scores: Sequence[float], prior: Sequence[float]) -> tuple[int, float]:
    """(position of the answer to return, its score): the best score, ties (and answers
    nobody wrote tests for) going to the highest ``prior`` (in [0, 1]: the model's train
    accuracy on the task); the score is NaN when no answer could be checked."""
    keys = [(-1.0 if math.isnan(s) else s) + 1e-3 * p for s, p in zip(scores, prior, strict=True)]
    best = max(range(len(keys)), key=keys.__getitem__)
    return best, scores[best]


@dataclass(frozen=True)
class CascadePolicy:
    """Call ``chain`` in order; after call ``i`` stop if the best predicted quality among the
    answers so far reaches ``thresholds[i]`` (the last call always stops). With ``vote``,
    the vote's confidence decides and ``vote_index`` maps the chain to the vote's models;
    with ``check``, the code check's pass share decides (without a checker only the chain's
    model with the best ``tie_break`` is called); otherwise ``steps[i]`` predicts the
    quality of each of the ``i + 1`` answers seen after call ``i``."""

    chain: tuple[str, ...]
    thresholds: tuple[float, ...]
    steps: tuple[LinearHeads, ...]
    keys: tuple[str, ...]
    vote: VoteModel | None = None
    vote_index: tuple[int, ...] = ()
    check: bool = False
    #: code checks: per chain model, its train accuracy on the task (breaks ties)
    tie_break: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.chain or len(self.thresholds) != len(self.chain) - 1:
            raise ValueError("a chain of n models needs n - 1 thresholds")
        if self.check:
            if self.vote is not None or self.steps:
                raise ValueError("a code-check cascade has neither a vote nor scoring steps")
            if len(self.tie_break) != len(self.chain):
                raise ValueError("a code-check cascade needs one tie-break prior per model")
        elif self.vote is not None:
            if len(self.vote_index) != len(self.chain):
                raise ValueError("a vote cascade maps every chain model to the vote")
        elif len(self.steps) != len(self.chain):
            raise ValueError("one scoring step per model of the chain")


def feature_dim(n_called: int, n_keys: int) -> int:
    return n_called * (n_keys + 5) + n_called * (n_called - 1)


def state_features(
    keys: Sequence[str], responses: Sequence[str | None], prior_logits: Sequence[float]
) -> FloatArray:
    """What is known after ``len(responses)`` calls, as a fixed-length vector."""
    parsed = [answer_key(r) for r in responses]
    words = [word_set(r) for r in responses]
    out: list[float] = []
    for j, response in enumerate(responses):
        onehot = [0.0] * (len(keys) + 2)
        key = parsed[j]
        if key is None:
            onehot[-1] = 1.0
        elif key in keys:
            onehot[keys.index(key)] = 1.0
        else:
            onehot[-2] = 1.0
        out.extend(onehot)
        out.extend(answer_shape(response))
        out.append(float(prior_logits[j]) / 4.0)
    for a in range(len(responses)):
        for b in range(a + 1, len(responses)):
            same = parsed[a] is not None and parsed[a] == parsed[b]
            out.append(1.0 if same else 0.0)
            out.append(jaccard(words[a], words[b]))
    return np.array(out, dtype=np.float64)


@dataclass
class CascadeRun:
    """One request going through a cascade: ask :meth:`next_model` which model to call,
    give its answer to :meth:`observe`, repeat until ``next_model`` returns ``None``, then
    return the answer of :meth:`answer`."""

    policy: CascadePolicy
    prior_logits: Sequence[float]
    prompt: str = ""
    checker: AnswerChecker | None = None
    _responses: list[str | None] = field(default_factory=list)
    _chosen: str | None = None
    quality: float = float("nan")

    def next_model(self) -> str | None:
        if self._chosen is not None:
            return None
        if self._unchecked:
            return self._fallback
        return self.policy.chain[len(self._responses)]

    @property
    def _unchecked(self) -> bool:
        """A code-check cascade that may not run code: it calls only :attr:`_fallback`."""
        return self.policy.check and self.checker is None

    @property
    def _fallback(self) -> str:
        best = max(range(len(self.policy.chain)), key=self.policy.tie_break.__getitem__)
        return self.policy.chain[best]

    @property
    def called(self) -> tuple[str, ...]:
        if self._unchecked:
            return (self._fallback,) if self._responses else ()
        return self.policy.chain[: len(self._responses)]

    def observe(self, model: str, response: str | None) -> None:
        expected = self.next_model()
        if expected is None or model != expected:
            raise ValueError(f"expected an answer from {expected!r}, got {model!r}")
        self._responses.append(response)
        if self._unchecked:
            self._chosen = model
            return
        step = len(self._responses) - 1
        best, confidence = self._score()
        last = step == len(self.policy.chain) - 1
        if last or confidence >= self.policy.thresholds[step]:
            self._chosen = self.policy.chain[best]
            self.quality = confidence

    def _score(self) -> tuple[int, float]:
        """(position of the best answer so far, its predicted quality)."""
        vote = self.policy.vote
        n = len(self._responses)
        if self.policy.check and self.checker is not None:
            scores = self.checker.scores(self._responses)
            best, score = rank_answers(scores, self.policy.tie_break[:n])
            return best, -1.0 if math.isnan(score) else score
        if vote is not None:
            codes = answer_codes(self.prompt, self._responses, vote.vocab)
            return vote.decide(self.policy.vote_index[:n], codes)
        x = state_features(self.policy.keys, self._responses, self.prior_logits[:n])
        proba = self.policy.steps[n - 1].proba(x[None, :])[0]
        best = int(np.argmax(proba))
        return best, float(proba[best])

    def answer(self) -> str:
        """The model whose answer goes to the client."""
        if self._chosen is None:
            raise RuntimeError("the cascade has not finished")
        return self._chosen
