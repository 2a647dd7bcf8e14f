from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from quality_synthetic import COSTS, MODELS

from kanjia.lab import load_dataset
from kanjia.routing.quality import QualityRouter
from kanjia.routing.quality._decide import pick_by_target, picks_by_target


def test_predict_gives_a_probability_per_model(bench_router: QualityRouter) -> None:
    proba = bench_router.predict("Question 1 about cats: a simple easy one.", "quiz")
    assert set(proba) == set(MODELS) == set(bench_router.models)
    assert all(0.0 < p < 1.0 for p in proba.values())


def test_hard_prompts_look_harder_for_the_tiny_model(bench_router: QualityRouter) -> None:
    easy = bench_router.predict("Question 7 about soup: a simple easy one.", "quiz")
    hard = bench_router.predict("Question 7 about soup: a difficult tricky one.", "quiz")
    assert hard["tiny-model"] < easy["tiny-model"]


def test_choose_picks_the_cheapest_that_meets_the_target(bench_router: QualityRouter) -> None:
    prompt = "Question 3 about chess: a simple easy one."
    proba = bench_router.predict(prompt, "quiz")
    candidates = [(m, COSTS[m]) for m in MODELS]
    for target in np.linspace(0.05, 0.99, 20):
        chosen = bench_router.choose(prompt, candidates, float(target), "quiz")
        meeting = [m for m, _ in candidates if proba[m] >= target]
        if meeting:
            assert chosen == min(meeting, key=lambda m: COSTS[m])
        else:
            assert chosen == max(proba, key=lambda m: proba[m])


def test_choose_handles_unknown_models_and_empty_lists(bench_router: QualityRouter) -> None:
    prompt = "Question 3 about chess: a simple easy one."
    assert bench_router.choose(prompt, [("other", 0.0), ("big-model", 1.0)], 0.5) == "big-model"
    with pytest.raises(ValueError):
        bench_router.choose(prompt, [], 0.5)


def test_rule_matches_its_vectorised_form() -> None:
    rng = np.random.default_rng(3)
    q, c = rng.random((50, 4)), rng.random((50, 4))
    for t in (0.2, 0.5, 0.9):
        expected = [pick_by_target(list(q[i]), list(c[i]), t) for i in range(50)]
        assert list(picks_by_target(q, c, t)) == expected


def test_save_load_round_trip_gives_identical_decisions(
    bench_router: QualityRouter, bench_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "router.npz"
    bench_router.save(path)
    loaded = QualityRouter.load(path)
    assert loaded.models == bench_router.models
    data = load_dataset(bench_dir).test()
    for i in range(0, len(data), 7):
        a = bench_router.predict(data.prompts[i], data.tasks[i])
        b = loaded.predict(data.prompts[i], data.tasks[i])
        assert a == b
        for w in (0.3, 0.9, 0.99):
            ra, rb = (
                bench_router.start(data.prompts[i], data.tasks[i], w),
                loaded.start(data.prompts[i], data.tasks[i], w),
            )
            while (m := ra.next_model()) is not None:
                assert rb.next_model() == m
                answer = data.responses[i][data.models.index(m)]
                ra.observe(m, answer)
                rb.observe(m, answer)
            assert rb.next_model() is None and ra.answer() == rb.answer()


def test_router_file_is_not_a_pickle(bench_router: QualityRouter, tmp_path: Path) -> None:
    path = tmp_path / "router.npz"
    bench_router.save(path)
    with np.load(path, allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)


