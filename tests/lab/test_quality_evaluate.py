from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from kanjia.cli.router import router
from kanjia.lab._metrics import aiq, apgr, cpt, dominance_margin, upper_hull


def test_report_has_the_required_keys(bench_report: dict[str, Any]) -> None:
    for key in ("curve", "baselines", "aiq", "decision_ms", "curves", "vs_task_label"):
        assert key in bench_report
    for name in ("tiny-model", "mid-model", "big-model", "task_label", "random_mix", "oracle"):
        assert {"accuracy", "mean_cost"} <= set(bench_report["baselines"][name])
    point = bench_report["curve"][0]
    assert {"threshold", "accuracy", "mean_cost"} <= set(point)
    assert {"p50", "p99"} <= set(bench_report["decision_ms"])
    assert "apgr" not in bench_report  # three models: no strong/weak pair


def test_cost_rises_with_the_threshold(bench_report: dict[str, Any]) -> None:
    for name in ("router_target", "router_weight"):
        costs = [p["mean_cost"] for p in bench_report["curves"][name]]
        assert all(b >= a - 1e-12 for a, b in itertools.pairwise(costs)), name
        thresholds = [p["threshold"] for p in bench_report["curves"][name]]
        assert thresholds == sorted(thresholds)


def test_router_beats_single_models_on_aiq(bench_report: dict[str, Any]) -> None:
    for name in ("tiny-model", "mid-model", "big-model", "random_mix"):
        assert bench_report["aiq"] > bench_report["baselines"][name]["aiq"]
    assert bench_report["baselines"]["oracle"]["aiq"] >= bench_report["aiq"]


def test_cli_train_and_eval_json(bench_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "r.npz"
    result = runner.invoke(
        router,
        ["train", "--data", str(bench_dir), "--out", str(out), "--folds", "3", "--no-cascades"],
    )
    assert result.exit_code == 0, result.output
    plot = tmp_path / "curve.png"
    result = runner.invoke(
        router,
        ["eval", "--data", str(bench_dir), "--router", str(out), "--json", "--plot", str(plot)],
    )
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert {"curve", "baselines", "aiq", "decision_ms"} <= set(report)
    assert plot.stat().st_size > 10_000


def test_two_model_data_reports_apgr_and_cpt(pair_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "r.npz"
    assert (
        runner.invoke(
            router, ["train", "--data", str(pair_dir), "--out", str(out), "--folds", "3"]
        ).exit_code
        == 0
    )
    result = runner.invoke(
        router, ["eval", "--data", str(pair_dir), "--router", str(out), "--json"]
    )
    report = orjson.loads(result.stdout.strip().splitlines()[-1])
    for key in ("apgr", "cpt50", "cpt80"):
        assert 0.0 <= report[key] <= 1.5
    assert report["cpt50"] < 0.5  # the synthetic prompts say which ones are hard
    text = runner.invoke(router, ["eval", "--data", str(pair_dir), "--router", str(out)])
    assert "CPT50" in text.output


def test_metrics_on_known_curves() -> None:
    assert upper_hull([(1, 0.5), (2, 0.6), (3, 0.9), (4, 0.85)]) == [(1, 0.5), (3, 0.9)]
    assert aiq([(1, 0.5), (3, 0.9)], 1, 3) == pytest.approx(0.7, abs=1e-3)
    assert aiq([(2, 0.8)], 1, 3) == pytest.approx(0.4, abs=1e-3)
    assert apgr([0.5], [0.75], 0.5, 1.0) == pytest.approx(0.5)
    assert cpt([0.2, 0.5], [0.7, 0.8], 0.5, 1.0, 0.5) == pytest.approx(0.35)
    assert dominance_margin([(1, 0.6), (3, 0.9)], [(2, 0.7)]) == pytest.approx(0.05)
