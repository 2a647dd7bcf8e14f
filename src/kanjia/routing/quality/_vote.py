"""Answer agreement for multiple-choice tasks: a Dawid-Skene style vote.

A task is a *choice task* when the models' answers read as one of a few option keys (a
letter, or an option's text). For each model the vote keeps a confusion table,
``P(model answers a | the right option is o)``, learned on the train split where the right
option is the one the correct models gave. Given the answers of any set of called models,
the posterior over the right option is the prior times their tables (naive Bayes), so
biased models (one that always says "A") count for little when they say their favourite
and for much when they do not. The reply is the answer of the best called model that gave
the winning option; the confidence is that option's posterior."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kanjia.routing.quality._answers import choice_key, prompt_options

FloatArray = npt.NDArray[np.float64]

def answer_codes(
    prompt: str, responses: Sequence[str | None], vocab: Sequence[str]
) -> list[int]:
    """Each answer as an index into ``vocab``; ``len(vocab)`` for anything else."""
    options = prompt_options(prompt)
    other = len(vocab)
    out = []
    for text in responses:
        key = choice_key(text, options)
        if key is not None and options and key not in options:
            key = None
        out.append(vocab.index(key) if key is not None and key in vocab else other)
    return out


@dataclass(frozen=True)
class VoteModel:
    """``log_prior`` (O,) over the right option (the vocabulary plus "none of them");
    ``log_conf`` (models, A, O): log P(answer code a | right option o); ``rank`` (models,)
    breaks ties between called models that gave the same option (higher is preferred)."""

    vocab: tuple[str, ...]
    log_prior: FloatArray
    log_conf: FloatArray
    rank: FloatArray

    def decide(self, called: Sequence[int], codes: Sequence[int]) -> tuple[int, float]:
        """(position in ``called`` of the answer to return, its confidence)."""
        lp = self.log_prior.copy()
        for j, a in zip(called, codes, strict=True):
            lp = lp + self.log_conf[j, a]
        post = np.exp(lp - lp.max())
        post /= post.sum()
        n = len(self.vocab)
        proposed = sorted({a for a in codes if a < n})
        if not proposed:
            return max(range(len(called)), key=lambda p: (self.rank[called[p]], -p)), 0.0
        best = max(proposed, key=lambda o: (post[o], -o))
        positions = [p for p, a in enumerate(codes) if a == best]
        pos = max(positions, key=lambda p: (self.rank[called[p]], -p))
        return pos, float(post[best])
