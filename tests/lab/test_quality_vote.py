"""Agreement cascades on choice tasks, the convex-hull plan and the joint logistic fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kanjia.lab import load_dataset
from kanjia.lab._fit import fit_heads
from kanjia.lab._levels import global_levels, task_hull
from kanjia.lab._search import Candidate
from kanjia.lab._votefit import choice_vocabulary, fit_vote, right_options, vote_arrays
from kanjia.routing.quality import CascadePolicy, CascadeRun, QualityRouter
from kanjia.routing.quality._answers import choice_key, prompt_options
from kanjia.routing.quality._vote import answer_codes

PROMPT = "Which one?\nA) Kyle\nB) Logan\nPrint only a single choice. Answer:"


def test_choice_keys_are_read_robustly() -> None:
    options = prompt_options(PROMPT)
    assert options == {"A": "kyle", "B": "logan"}
    cases = {"B\n": "B", "A)": "A", "(B) Logan": "B", "D (": "D", "Answer: B": "B",
             "Logan": "B", "kyle": "A", "13": None, "": None}
    for text, key in cases.items():
        assert choice_key(text, options) == key, text
    # a letter the question does not offer is no choice
    assert answer_codes(PROMPT, ["C", "B", None], ("A", "B")) == [2, 1, 2]


def test_choice_vocabulary_detects_choice_tasks_only() -> None:
    prompts = [PROMPT] * 20
    assert choice_vocabulary(prompts, [["A", "B\n"]] * 20) == ("A", "B")
    code = [["```python\ndef f(x):\n    return x\n```", "Sure, here it is"]] * 20
    assert choice_vocabulary(prompts, code) is None


def _toy_vote(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, models = 400, 3
    right = rng.integers(0, 2, n)
    accuracy = np.array([0.7, 0.8, 0.95])
    ok = rng.random((n, models)) < accuracy
    codes = np.where(ok, right[:, None], 1 - right[:, None]).astype(np.int64)
    codes[rng.random((n, models)) < 0.05] = 2  # unparsed answers
    quality = (codes == right[:, None]).astype(float)
    return codes, quality, accuracy


def test_vectorised_vote_matches_the_run_time_decision() -> None:
    codes, quality, accuracy = _toy_vote()
    right = right_options(codes, quality, 2)
    vote = fit_vote(codes, right, ("A", "B"), accuracy)
    for chain in [(0,), (0, 1), (1, 0, 2), (2,)]:
        picked, conf = vote_arrays(vote, codes, chain)
        for i in range(0, len(codes), 13):
            pos, c = vote.decide(chain, [int(codes[i, j]) for j in chain])
            assert chain[pos] == picked[i]
            assert c == pytest.approx(conf[i])


def test_vote_cascade_stops_on_agreement_and_escalates_on_disagreement() -> None:
    codes, quality, accuracy = _toy_vote()
    vote = fit_vote(codes, right_options(codes, quality, 2), ("A", "B"), accuracy)
    policy = CascadePolicy(("a", "b", "big"), (0.99, 0.9), (), (), vote=vote, vote_index=(0, 1, 2))
    agree = CascadeRun(policy, [0.0] * 3, PROMPT)
    agree.observe("a", "B")
    agree.observe("b", "B")
    assert agree.next_model() is None and agree.called == ("a", "b")
    assert agree.answer() == "b"  # the better of the two that agree
    split = CascadeRun(policy, [0.0] * 3, PROMPT)
    split.observe("a", "A")
    split.observe("b", "B")
    assert split.next_model() == "big"
    split.observe("big", "A")
    assert split.answer() == "big" and split.called == ("a", "b", "big")


def test_plan_walks_the_combined_hull_in_order_of_marginal_gain() -> None:
    def cand(q: float, c: float) -> Candidate:
        return Candidate("single", (0,), (), 0.0, q, c)

    hulls = {
        "x": task_hull([cand(0.5, 1.0), cand(0.9, 2.0), cand(0.6, 3.0)]),
        "y": task_hull([cand(0.5, 1.0), cand(0.6, 5.0)]),
    }
    assert [h.quality for h in hulls["x"]] == [0.5, 0.9]
    levels = global_levels(hulls, {"x": 0.5, "y": 0.5}, scale=5.0)
    weights = [w for w, _ in levels]
    assert weights == sorted(weights) and len(set(weights)) == len(weights)
    costs = [sum(0.5 * (lo.cost * (1 - f) + hi.cost * f) for lo, hi, f in m.values())
             for _, m in levels]
    assert costs == sorted(costs)
    assert levels[-1][1]["x"][1].quality == 0.9 and levels[-1][1]["y"][1].cost == 5.0


def test_mixed_levels_send_a_stable_share_to_the_dearer_policy(
    bench_router: QualityRouter,
) -> None:
    mixed = [c for p in bench_router.plans.values() for c in p.choices if 0 < c.fraction < 1]
    assert mixed
    choice = mixed[0]
    prompts = [f"prompt {i}" for i in range(400)]
    dear = sum(choice.resolve(p) == (choice.alt_route_weight, choice.alt_cascade) for p in prompts)
    assert abs(dear / 400 - choice.fraction) < 0.1
    assert [choice.resolve(p) for p in prompts] == [choice.resolve(p) for p in prompts]


def test_saved_router_replays_cascades_identically(
    bench_router: QualityRouter, bench_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "router.npz"
    bench_router.save(path)
    loaded = QualityRouter.load(path)
    assert any(p.vote is not None for ps in loaded.cascades.values() for p in ps)
    data = load_dataset(bench_dir).test()
    for weight in loaded.plan_weights[::5]:
        for i in range(0, len(data), 11):
            runs = [r.start(data.prompts[i], data.tasks[i], weight) for r in (bench_router, loaded)]
            for run in runs:
                while (model := run.next_model()) is not None:
                    run.observe(model, data.responses[i][data.models.index(model)])
            assert runs[0].called == runs[1].called
            assert runs[0].answer() == runs[1].answer()


def test_joint_logistic_fit_matches_scikit_learn() -> None:
    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 6))
    y = (x @ rng.normal(size=(6, 2)) + rng.normal(size=(300, 2)) > 0).astype(float)
    heads = fit_heads(x, y, c=1.0)
    for k in range(2):
        ref = sklearn.LogisticRegression(C=1.0, max_iter=1000, tol=1e-8).fit(x, y[:, k])
        assert np.allclose(heads.weights[:, k], ref.coef_[0], atol=2e-3)
        assert heads.bias[k] == pytest.approx(ref.intercept_[0], abs=2e-3)
