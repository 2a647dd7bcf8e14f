"""Code checks: answers' code run against the other answers' asserts in a sandboxed child,
and the cascades built on them (searched on train, replayed through ``CascadeRun``)."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import numpy as np
import pytest
from quality_synthetic import make_codebench

from kanjia.routing.quality import (
    CascadePolicy,
    CascadeRun,
    CodeChecker,
    QualityRouter,
    SandboxLimits,
    TrainOptions,
    evaluate,
    format_summary,
    load_dataset,
    train_router,
)
from kanjia.routing.quality._codecheck import extract_code, extract_tests, run_jobs

FENCE = "```"


def _coded(body: str, name: str = "solve") -> str:
    code = f"import math\ndef {name}(x):\n    {body}\n\nprint({name}(2))\n"
    return f"Sure:\n{FENCE}python\n{code}{FENCE}"


TESTS = (
    "[PYTHON]\ndef g(x):\n    return 0\n[/PYTHON]\n"
    "[TESTS]\nassert f(2) == 4\nassert f(3) == 6\n[/TESTS]"
)


def test_extract_code_keeps_definitions_and_drops_example_calls() -> None:
    code = extract_code(_coded("return x * 2"))
    assert "def solve(x)" in code and "import math" in code and "print" not in code
    assert extract_code("[PYTHON]\ndef f(a):\n    return a\n[/PYTHON]") == "def f(a):\n    return a"
    assert extract_code("No code here, only words.") == ""
    assert extract_code(f"{FENCE}js\nfunction f() {{}}\n{FENCE}") == ""
    assert extract_code(None) == ""


def test_extract_tests_reads_asserts_that_call_a_function() -> None:
    assert extract_tests(TESTS) == ("assert f(2) == 4", "assert f(3) == 6")
    assert extract_tests(f"{FENCE}python\nassert True\nassert h(1) == 1\n{FENCE}") == (
        "assert h(1) == 1",
    )
    many = "[TESTS]\n" + "\n".join(f"assert f({i}) == {i}" for i in range(30)) + "\n[/TESTS]"
    assert len(extract_tests(many)) == 12


def test_run_jobs_passes_fails_and_binds_the_main_function() -> None:
    tests = ("assert f(2) == 4", "assert f(3) == 6")
    right, wrong, broken = run_jobs(
        [
            ("def double(x):\n    return 2 * x", tests),  # another name: bound to f
            ("def double(x):\n    return x + 2", tests),
            ("def double(x):\n    return y", tests),
        ]
    )
    assert right == (1, 1) and wrong == (1, 0) and broken == (0, 0)
    assert run_jobs([("raise SystemExit(3)", tests)]) == [None]


def test_the_child_is_contained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VENDOR_API_KEY", "sk-secret")
    limits = SandboxLimits(step_s=0.2, wall_s=5.0)
    hang = ("def f(x):\n    while True:\n        pass", ("assert f(1) == 1",))
    env = ("import os\ndef f(x):\n    return str(os.environ)", ("assert 'sk-' not in f(0)",))
    write = (
        "def f(x):\n    with open('out.txt', 'w') as fh:\n        fh.write('x' * 10)\n    return 1",
        ("assert f(0) == 1",),
    )
    hog = ("def f(x):\n    return len(bytearray(1 << 31))", ("assert f(0) > 0",))
    assert run_jobs([hang, env, write, hog], limits) == [(0,), (1,), (0,), (0,)]
    killed = ("import os\ndef f(x):\n    os._exit(0)", ("assert f(1) == 1",))
    assert run_jobs([killed], limits) == [None]


def test_the_child_has_no_network_where_the_machine_allows_it() -> None:
    checker = CodeChecker()
    if not checker.network_cut:
        pytest.skip("this machine does not allow unprivileged network namespaces")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        code = (
            "import socket\ndef f(x):\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n    return 1"
        )
        assert checker.run([(code, ("assert f(0) == 1",))]) == [(0,)]
        assert CodeChecker(SandboxLimits(cut_network=False)).run(
            [(code, ("assert f(0) == 1",))]
        ) == [(1,)]


def test_scores_use_only_the_other_answers_tests() -> None:
    checker = CodeChecker()
    scores = checker.scores([_coded("return 2 * x", "f"), TESTS, _coded("return x + 2", "f")])
    assert scores[0] == 1.0 and scores[2] == 0.5
    assert math.isnan(scores[1])  # nobody else wrote tests
    assert math.isnan(checker.scores([_coded("return x")])[0])
    assert checker.scores(["no code at all", TESTS])[0] == 0.0


def _check_policy(thresholds: tuple[float, ...] = (0.5, 1.0)) -> CascadePolicy:
    return CascadePolicy(
        ("tester", "coder", "expert"), thresholds, (), (), check=True, tie_break=(0.1, 0.6, 0.9)
    )


def test_check_cascade_stops_when_the_cheap_code_passes() -> None:
    run = CascadeRun(_check_policy(), [0.0, 0.0, 0.0], "", CodeChecker())
    assert run.runs_code
    run.observe("tester", TESTS)
    assert run.next_model() == "coder"  # the tester cannot vouch for itself
    run.observe("coder", _coded("return x * 2"))
    assert run.next_model() is None and run.answer() == "coder" and run.quality == 1.0


def test_check_cascade_escalates_when_the_cheap_code_fails() -> None:
    run = CascadeRun(_check_policy(), [0.0, 0.0, 0.0], "", CodeChecker())
    run.observe("tester", TESTS)
    run.observe("coder", _coded("return x + 2"))
    assert run.next_model() == "expert"
    run.observe("expert", _coded("return x * 2"))
    assert run.answer() == "expert" and run.called == ("tester", "coder", "expert")


def test_without_a_checker_a_check_cascade_calls_its_best_model_alone() -> None:
    run = CascadeRun(_check_policy(), [0.0, 0.0, 0.0])
    assert not run.runs_code and run.called == ()
    assert run.next_model() == "expert"  # the best train accuracy of the chain
    run.observe("expert", _coded("return x * 2"))
    assert run.next_model() is None and run.answer() == "expert"
    assert run.called == ("expert",)


def test_check_policy_needs_its_tie_break() -> None:
    with pytest.raises(ValueError):
        CascadePolicy(("a", "b"), (1.0,), (), (), check=True)


@pytest.fixture(scope="module")
def code_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_codebench(tmp_path_factory.mktemp("codebench"))


def test_training_finds_and_replays_a_check_cascade(code_dir: Path, tmp_path: Path) -> None:
    data = load_dataset(code_dir)
    options = TrainOptions(folds=3, n_buckets=1 << 10, code_checks=True)
    router = train_router(data, options)
    policies = router.cascades["code"]
    assert any(p.check for p in policies)
    path = tmp_path / "code.npz"
    router.save(path)
    loaded = QualityRouter.load(path)
    assert [(p.chain, p.thresholds, p.tie_break) for p in loaded.cascades["code"]] == [
        (p.chain, p.thresholds, p.tie_break) for p in policies
    ]

    checked = evaluate(loaded.with_checker(CodeChecker()), data)
    unchecked = evaluate(loaded, data)
    expert = checked["baselines"]["expert"]
    assert checked["code_checks"] and not unchecked["code_checks"]
    assert checked["code_check_cascades"] == unchecked["code_check_cascades"] >= 1
    assert "code checks: ran" in format_summary(checked)
    assert "code checks: not run" in format_summary(unchecked)

    def best_under(report: dict[str, object], budget: float) -> float:
        points = [p for p in report["curve"] if p["mean_cost"] <= budget]  # type: ignore[attr-defined]
        return max((p["accuracy"] for p in points), default=0.0)

    # running the coder's code against the tester's asserts matches the expert at 60% of
    # its cost; without running it the same budget buys far less
    budget = 0.6 * expert["mean_cost"]
    assert best_under(checked, budget) >= expert["accuracy"] - 0.02
    assert best_under(checked, budget) > best_under(unchecked, budget) + 0.1
    assert np.isfinite(checked["aiq"])


def test_training_runs_no_code_unless_asked(code_dir: Path) -> None:
    router = train_router(load_dataset(code_dir), TrainOptions(folds=3, n_buckets=1 << 10))
    assert not any(p.check for p in router.cascades["code"])


def test_the_gateway_runs_code_only_with_code_checks_on(code_dir: Path, tmp_path: Path) -> None:
    from kanjia.config import load_settings
    from kanjia.errors import ConfigError
    from kanjia.server.app import build_app

    path = tmp_path / "code.npz"
    train_router(load_dataset(code_dir), TrainOptions(folds=3, n_buckets=1 << 10)).save(path)
    for on in (False, True):
        settings = load_settings(None, quality_router=str(path), code_checks=on)
        quality = build_app(settings, env={}).services.planner.quality
        assert isinstance(quality, QualityRouter)
        assert (quality.checker is not None) is on
    with pytest.raises(ConfigError, match="quality_router"):
        build_app(load_settings(None, quality_router=str(tmp_path / "missing.npz")), env={})
