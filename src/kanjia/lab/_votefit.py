"""Learning the vote of choice tasks (see ``kanjia.routing.quality._vote``): which tasks are
choice tasks, the right option of each train row, the confusion tables, and the vote of
every row at once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from kanjia.routing.quality._answers import choice_key, prompt_options
from kanjia.routing.quality._vote import VoteModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: A task is a choice task when this share of all answers parse to a common option key.
MIN_PARSED = 0.8
MAX_OPTIONS = 10
ALPHA = 1.0


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
