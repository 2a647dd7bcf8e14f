"""Checks on the shared RouterBench data; skipped where that directory is absent."""

from __future__ import annotations

import numpy as np
import pytest

from kanjia.lab import data_root, load_dataset
from kanjia.lab._baselines import task_label

ROUTERBENCH = data_root() / "routerbench"


@pytest.mark.skipif(
    not ROUTERBENCH.is_dir(),
    reason=f"shared RouterBench data not found at {ROUTERBENCH} (set KANJIA_DATA_DIR)",
)
def test_routerbench_split_and_the_per_task_floor() -> None:
    data = load_dataset(ROUTERBENCH)
    assert len(data.models) == 11
    assert data.task_names == ("arc-challenge", "mbpp", "winogrande")
    train, test = data.train(), data.test()
    assert (len(train), len(test)) == (2205, 945)
    floor = task_label(train, test, float(train.cost.mean(0).max()))
    assert floor.accuracy == pytest.approx(0.861, abs=0.001)
    assert floor.mean_cost == pytest.approx(0.00165, rel=0.01)
    assert np.isfinite(test.cost).all()
