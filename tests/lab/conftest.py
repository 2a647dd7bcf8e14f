"""Fixtures: synthetic data directories and a router trained on them (once per session)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from quality_synthetic import make_routellm, make_routerbench


@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_routerbench(tmp_path_factory.mktemp("routerbench"))


@pytest.fixture(scope="session")
def pair_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_routellm(tmp_path_factory.mktemp("routellm"))


@pytest.fixture(scope="session")
def bench_router(bench_dir: Path) -> Any:
    from kanjia.lab import TrainOptions, load_dataset, train_router

    return train_router(load_dataset(bench_dir), TrainOptions(folds=3, n_buckets=1 << 12))


@pytest.fixture(scope="session")
def bench_report(bench_router: Any, bench_dir: Path) -> Any:
    from kanjia.lab import evaluate, load_dataset

    return evaluate(bench_router, load_dataset(bench_dir))
