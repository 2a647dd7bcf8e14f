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

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kanjia.routing.quality._answers import choice_key, prompt_options

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: A task is a choice task when this share of all answers parse to a common option key.
MIN_PARSED = 0.8
MAX_OPTIONS = 10
ALPHA = 1.0


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


def choice_vocabulary(
    prompts: Sequence[str], responses: Sequence[Sequence[str | None]]
) -> tuple[str, ...] | None:
    """The option keys of a choice task, or ``None`` when answers are not choices."""
    counts: Counter[str] = Counter()
    total = 0
    for prompt, row in zip(prompts, responses, strict=True):
        options = prompt_options(prompt)
        for text in row:
            total += 1
            key = choice_key(text, options)
            if key is not None and (not options or key in options):
                counts[key] += 1
    if total == 0:
        return None
    common = [k for k, n in counts.items() if n >= 0.02 * total]
    parsed = sum(counts[k] for k in common)
    if len(common) < 2 or len(common) > MAX_OPTIONS or parsed < MIN_PARSED * total:
        return None
    return tuple(sorted(common))


def right_options(codes: IntArray, quality: FloatArray, n_vocab: int) -> IntArray:
    """Per row, the option the correct models gave (most common), else ``n_vocab``."""
    out = np.full(len(codes), n_vocab, dtype=np.int64)
    for i in range(len(codes)):
        good = codes[i][(quality[i] >= 0.5) & (codes[i] < n_vocab)]
        if len(good):
            out[i] = int(np.bincount(good).argmax())
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


def fit_vote(
    codes: IntArray, right: IntArray, vocab: tuple[str, ...], rank: FloatArray
) -> VoteModel:
    n_models = codes.shape[1]
    size = len(vocab) + 1
    prior = np.bincount(right, minlength=size) + ALPHA
    log_conf = np.zeros((n_models, size, size))
    for j in range(n_models):
        table = np.full((size, size), ALPHA)
        np.add.at(table, (codes[:, j], right), 1.0)
        log_conf[j] = np.log(table / table.sum(axis=0, keepdims=True))
    return VoteModel(vocab, np.log(prior / prior.sum()), log_conf, rank)


def vote_arrays(
    vote: VoteModel, codes: IntArray, chain: Sequence[int]
) -> tuple[IntArray, FloatArray]:
    """Vectorised :meth:`VoteModel.decide` for all rows after calling ``chain``: (model
    returned, confidence), with exactly the same tie-breaking."""
    rows = len(codes)
    n = len(vote.vocab)
    lp = np.broadcast_to(vote.log_prior, (rows, n + 1)).copy()
    for j in chain:
        lp += vote.log_conf[j][codes[:, j]]
    post = np.exp(lp - lp.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    proposed = np.zeros((rows, n + 1), dtype=bool)
    for j in chain:
        ok = codes[:, j] < n
        proposed[np.flatnonzero(ok), codes[ok, j]] = True
    masked = np.where(proposed[:, :n], post[:, :n], -1.0)
    best = masked.argmax(axis=1)  # first index among equals, as in decide()
    any_proposed = proposed[:, :n].any(axis=1)
    confidence = np.where(any_proposed, masked.max(axis=1), 0.0)
    # preferred called model: highest rank, then earliest position
    chosen = np.full(rows, -1, dtype=np.int64)
    chosen_any = np.full(rows, -1, dtype=np.int64)
    for j in chain:
        better_any = (chosen_any < 0) | (vote.rank[j] > vote.rank[np.maximum(chosen_any, 0)])
        chosen_any = np.where(better_any, j, chosen_any)
        match = codes[:, j] == best
        better = match & ((chosen < 0) | (vote.rank[j] > vote.rank[np.maximum(chosen, 0)]))
        chosen = np.where(better, j, chosen)
    picked = np.where(any_proposed, chosen, chosen_any)
    return picked.astype(np.int64), confidence
