from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from quality_synthetic import MODELS

from kanjia.lab import load_dataset
from kanjia.lab._prices import price_of
from kanjia.lab._tokens import count_tokens


def test_routerbench_layout_is_read_without_a_fixed_model_list(bench_dir: Path) -> None:
    data = load_dataset(bench_dir)
    assert set(data.models) == set(MODELS)
    assert data.task_names == ("quiz", "riddle")
    assert data.is_test.sum() == 240 and (~data.is_test).sum() == 480
    assert data.prompts[0].startswith("Question 0")  # list repr unwrapped
    assert data.responses[0][0] in ("A\n", "B\n")
    assert ((data.quality == 0) | (data.quality == 1)).all()


def test_rows_without_labels_are_dropped(tmp_path: Path, bench_dir: Path) -> None:
    import pandas as pd

    for f in bench_dir.iterdir():
        frame = pd.read_csv(f)
        if f.name == "quiz_train.csv":
            frame.loc[0, "big-model"] = np.nan
        frame.to_csv(tmp_path / f.name, index=False)
    assert len(load_dataset(tmp_path)) == len(load_dataset(bench_dir)) - 1


def test_routellm_layout_costs_tokens_times_list_prices(pair_dir: Path) -> None:
    data = load_dataset(pair_dir)
    assert data.task_names == ("quiz",)
    assert len(data.models) == 2
    i = 0
    for j, model in enumerate(data.models):
        expected = price_of(model).cost(count_tokens(data.prompts[i]), 1)
        assert data.cost[i, j] == pytest.approx(expected)
    assert "list prices" in data.cost_source


def test_contaminated_prompts_never_reach_the_test_split(pair_dir: Path) -> None:
    import json

    data = load_dataset(pair_dir)
    lines = (pair_dir / "quiz_contaminated_prompts.jsonl").read_text().splitlines()
    bad = {json.loads(line)["eval_prompt"] for line in lines}
    test_prompts = {p for p, t in zip(data.prompts, data.is_test, strict=True) if t}
    assert not bad & test_prompts
    assert 0 < data.is_test.mean() < 0.5


def test_unknown_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "nope")
