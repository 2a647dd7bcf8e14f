"""Offline search for execution cascades on a code task (train split only): chains of up
to three models, cheapest first; after each call every answer so far is scored by the
share of the other answers' tests its code passes (``_codecheck``), and the chain stops
when the best score reaches the step's threshold. The answer returned is the best-scored
one, ties going to the model with the better train accuracy on the task. Each row's code
is run once against each other model's tests, and every chain is judged from that table."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from kanjia.lab._codecheck import CodeChecker, Job, cross_jobs, extract_code
from kanjia.lab._search import Candidate, candidate_models

FloatArray = npt.NDArray[np.float64]
Responses = Sequence[Sequence[str | None]]

THRESHOLDS = (0.5, 0.75, 1.0, 2.0)
MIN_CODE_SHARE = 0.5
#: the jobs of this many rows go to one child (each job still gets a process of its own)
BATCH_ROWS = 25


def is_code_task(responses: Responses) -> bool:
    """Whether most answers carry a function in a code block."""
    answers = [r for row in responses for r in row]
    coded = sum(1 for r in answers if extract_code(r))
    return bool(answers) and coded >= MIN_CODE_SHARE * len(answers)


def pass_tables(responses: Responses, checker: CodeChecker) -> tuple[FloatArray, FloatArray]:
    """``passed[i, j, k]``: how many of model ``k``'s tests model ``j``'s code passes on
    row ``i``; ``total[i, k]``: how many tests model ``k`` wrote there."""
    n, m = len(responses), len(responses[0]) if responses else 0
    passed = np.zeros((n, m, m))
    total = np.zeros((n, m))
    for start in range(0, n, BATCH_ROWS):
        jobs: list[Job] = []
        where: list[tuple[int, int, int]] = []
        for i in range(start, min(n, start + BATCH_ROWS)):
            row_jobs, total[i] = cross_jobs(responses[i])
            jobs += [job for _, _, job in row_jobs]
            where += [(i, j, k) for j, k, _ in row_jobs]
        for (i, j, k), result in zip(where, checker.run(jobs), strict=True):
            passed[i, j, k] = sum(result) if result else 0
    return passed, total


def prefix_scores(passed: FloatArray, total: FloatArray, prefix: tuple[int, ...]) -> FloatArray:
    """(rows, len(prefix)) scores after the prefix's calls; NaN where no other called model
    wrote tests."""
    cols = list(prefix)
    sub = passed[:, cols][:, :, cols].copy()
    idx = np.arange(len(cols))
    sub[:, idx, idx] = 0.0
    tot = total[:, cols]
    foreign = tot.sum(axis=1, keepdims=True) - tot
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.where(foreign > 0, sub.sum(axis=2) / foreign, np.nan)
    return out


def _ranked(scores: FloatArray, prior: FloatArray) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """``rank_answers`` over rows; ``prior`` is per model of the prefix."""
    keys = np.where(np.isnan(scores), -1.0, scores) + 1e-3 * prior[None, :]
    best = np.argmax(keys, axis=1)
    return best, scores[np.arange(len(scores)), best]


def exec_candidates(
    responses: Responses,
    quality: FloatArray,
    cost: FloatArray,
    checker: CodeChecker,
    max_len: int = 3,
) -> list[Candidate]:
    """Every chain and threshold setting, with its train quality and cost (the sum of the
    calls made); ties go to the model with the better train accuracy on the task."""
    passed, total = pass_tables(responses, checker)
    prior = quality.mean(axis=0)
    models = candidate_models(quality, cost)
    rows = np.arange(len(quality))
    out: list[Candidate] = []
    for length in range(2, max_len + 1):
        for chain in itertools.combinations(models, length):
            steps = []
            for i in range(length):
                prefix = chain[: i + 1]
                best, score = _ranked(prefix_scores(passed, total, prefix), prior[list(prefix)])
                steps.append((np.array(prefix)[best], np.nan_to_num(score, nan=-1.0)))
            for ts in itertools.product(THRESHOLDS, repeat=length - 1):
                done = np.zeros(len(rows), dtype=bool)
                got = np.zeros(len(rows))
                spent = np.zeros(len(rows))
                for i, (picked, score) in enumerate(steps):
                    active = ~done
                    spent[active] += cost[active, chain[i]]
                    stop = active & ((i == length - 1) | (score >= (*ts, 0.0)[i]))
                    got[stop] = quality[rows[stop], picked[stop]]
                    done |= stop
                out.append(
                    Candidate("exec", chain, ts, 0.0, float(got.mean()), float(spent.mean()))
                )
    return out
