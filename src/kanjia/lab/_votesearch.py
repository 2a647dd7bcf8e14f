"""Offline search for agreement cascades on a choice task (train split only): ordered
chains of up to three cheap models, optionally closed by the task's strongest model, each
with a stop threshold on the vote's confidence after every call. Every chain is judged on
out-of-fold votes (the confusion tables never see the rows they are judged on); the cost of
a row is the sum of the calls the chain made on it."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kanjia.lab._search import Candidate, candidate_models
from kanjia.lab._votefit import choice_vocabulary, fit_vote, right_options, vote_arrays
from kanjia.routing.quality._vote import VoteModel, answer_codes

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

THRESHOLDS = (0.6, 0.75, 0.85, 0.92, 0.97, 0.99, 0.999, 2.0)


@dataclass(frozen=True)
class VoteTask:
    vote: VoteModel  # fitted on all the task's train rows
    candidates: list[Candidate]


def _prefix_outcomes(
    codes: IntArray, right: IntArray, vocab: tuple[str, ...], rank: FloatArray,
    quality: FloatArray, folds: IntArray, prefix: tuple[int, ...],
) -> tuple[FloatArray, FloatArray]:
    """Out of fold, per row: quality of the answer returned after ``prefix``, confidence."""
    got = np.zeros(len(codes))
    conf = np.zeros(len(codes))
    rows = np.arange(len(codes))
    for f in np.unique(folds):
        test = folds == f
        vote = fit_vote(codes[~test], right[~test], vocab, rank)
        picked, c = vote_arrays(vote, codes[test], prefix)
        got[test] = quality[rows[test], picked]
        conf[test] = c
    return got, conf


def simulate_chain(
    got: Sequence[FloatArray], conf: Sequence[FloatArray], chain: tuple[int, ...],
    thresholds: tuple[float, ...], cost: FloatArray,
) -> tuple[float, float]:
    """Mean quality and mean cost of one chain at one threshold setting."""
    n = len(cost)
    done = np.zeros(n, dtype=bool)
    quality = np.zeros(n)
    spent = np.zeros(n)
    last = len(chain) - 1
    for i, j in enumerate(chain):
        active = ~done
        spent[active] += cost[active, j]
        stop = active if i == last else active & (conf[i] >= thresholds[i])
        quality[stop] = got[i][stop]
        done |= stop
    return float(quality.mean()), float(spent.mean())


def chains(pool: Sequence[int], closer: int, max_cheap: int) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = []
    cheap = [j for j in pool if j != closer]
    for length in range(1, max_cheap + 1):
        for chain in itertools.permutations(cheap, length):
            out.append(chain)
            out.append((*chain, closer))
    return out


def vote_candidates(
    prompts: Sequence[str],
    responses: Sequence[Sequence[str | None]],
    quality: FloatArray,
    cost: FloatArray,
    folds: IntArray,
    max_cheap: int = 3,
    max_models: int = 6,
) -> VoteTask | None:
    """Agreement cascades for one task, or ``None`` when its answers are not choices."""
    vocab = choice_vocabulary(prompts, responses)
    if vocab is None:
        return None
    codes = np.array(
        [answer_codes(p, r, vocab) for p, r in zip(prompts, responses, strict=True)],
        dtype=np.int64,
    )
    right = right_options(codes, quality, len(vocab))
    rank = quality.mean(axis=0)
    parsed = (codes < len(vocab)).mean(axis=0)
    usable = [j for j in candidate_models(quality, cost, max_models) if parsed[j] >= 0.5]
    closer = int(np.argmax(rank))
    cache: dict[tuple[int, ...], tuple[FloatArray, FloatArray]] = {}

    def outcome(prefix: tuple[int, ...]) -> tuple[FloatArray, FloatArray]:
        if prefix not in cache:
            cache[prefix] = _prefix_outcomes(
                codes, right, vocab, rank, quality, folds, prefix
            )
        return cache[prefix]

    found: list[Candidate] = []
    for chain in chains(usable, closer, max_cheap):
        if len(chain) == 1:
            continue  # single models are candidates of their own
        steps = [outcome(chain[: i + 1]) for i in range(len(chain))]
        got = [s[0] for s in steps]
        conf = [s[1] for s in steps]
        for ts in itertools.product(THRESHOLDS, repeat=len(chain) - 1):
            q, c = simulate_chain(got, conf, chain, ts, cost)
            found.append(Candidate("vote", chain, ts, 0.0, q, c))
    return VoteTask(fit_vote(codes, right, vocab, rank), found)
