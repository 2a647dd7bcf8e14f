"""Code checks: answers' code run against the other answers' asserts in a sandboxed child,
and the cascades built on them (searched on train, replayed through ``CascadeRun``)."""

from __future__ import annotations

import ctypes
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
from quality_synthetic import make_codebench

from kanjia.lab import (
    CodeChecker,
    CodeCheckUnavailable,
    SandboxLimits,
    TrainOptions,
    evaluate,
    format_summary,
    load_dataset,
    train_router,
)
from kanjia.lab._codecheck import (
    extract_code,
    extract_tests,
    isolation_prefix,
    run_jobs,
)
from kanjia.routing.quality import CascadePolicy, CascadeRun, QualityRouter

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


@pytest.fixture(scope="module")
def jail() -> tuple[str, ...]:
    prefix = isolation_prefix()
    if prefix is None:
        pytest.skip("this machine does not allow unprivileged namespaces (unshare -rnpfm)")
    return prefix


def test_run_jobs_passes_fails_and_binds_the_main_function(jail: tuple[str, ...]) -> None:
    tests = ("assert f(2) == 4", "assert f(3) == 6")
    got = run_jobs(
        [
            ("def double(x):\n    return 2 * x", tests),  # another name: bound to f
            ("def double(x):\n    return x + 2", tests),
            ("def double(x):\n    return y", tests),
            ("import math\ndef f(x):\n    return int(math.sqrt(x * x)) * 2", tests),
        ],
        prefix=jail,
    )
    assert got == [(1, 1), (1, 0), (0, 0), (1, 1)]
    assert run_jobs([("raise SystemExit(3)", tests)], prefix=jail) == [None]


def test_the_child_sees_no_file_no_secret_no_network(
    jail: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VENDOR_API_KEY", "sk-secret")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    jobs = [
        ("import os\ndef f(x):\n    return os.listdir('/')", ("assert f(0) == []",)),
        ("import os\ndef f(x):\n    return str(os.environ)", ("assert 'sk-' not in f(0)",)),
        ("def f(x):\n    return open('/proc/1/environ').read()", ("assert f(0)",)),
        (f"import os\ndef f(x):\n    os.unlink({str(victim)!r})\n    return 1", ("assert f(0)",)),
        (
            "def f(x):\n    with open('out.txt', 'w') as fh:\n        fh.write('x')\n    return 1",
            ("assert f(0)",),
        ),
        ("import socket\ndef f(x):\n    return 1", ("assert f(0) == 1",)),
    ]
    assert run_jobs(jobs, prefix=jail) == [(1,), (1,), (0,), (0,), (0,), None]
    assert victim.read_text() == "keep me"


def test_a_job_cannot_forge_another_jobs_result(jail: tuple[str, ...]) -> None:
    forge_pipe = (
        "import os\nclass K:\n    for fd in range(3, 16):\n"
        "        try:\n            os.write(fd, b'[[1]]')\n        except OSError:\n"
        "            pass\ndef f(x):\n    return 0",
        ("assert f(1) == 1",),
    )
    patch_json = (
        "import json\njson.dumps = lambda *a, **k: '[[1], [1, 1]]'\ndef f(x):\n    return 0",
        ("assert f(1) == 1",),
    )
    honest = ("def f(x):\n    return 0", ("assert f(1) == 1", "assert f(2) == 2"))
    # the forger only spoils its own result (bytes before "loaded" make it None)
    assert run_jobs([forge_pipe, patch_json, honest], prefix=jail) == [None, (0,), (0, 0)]


def test_the_child_is_bounded_in_time_memory_and_processes(jail: tuple[str, ...]) -> None:
    limits = SandboxLimits(step_s=0.2, slack_s=3.0)
    hang = ("def f(x):\n    while True:\n        pass", ("assert f(1) == 1", "assert 1"))
    hog = ("def f(x):\n    return len(bytearray(1 << 31))", ("assert f(0) > 0",))
    flood = (
        "import os\ndef f(x):\n    for fd in range(3, 16):\n        try:\n"
        "            os.write(fd, b'1' * 100000)\n        except OSError:\n            pass\n"
        "    return 1",
        ("assert f(0) == 1",),
    )
    escape = (
        "import os, time\ndef f(x):\n    if os.fork() == 0:\n        os.setsid()\n"
        "        time.sleep(60)\n    return 1",
        ("assert f(0) == 1",),
    )
    started = time.monotonic()
    got = run_jobs([hang, hog, flood, escape], limits, prefix=jail)
    assert time.monotonic() - started < 10
    # the loop fails its own test only; the flood can only fake its own result
    assert got is not None and got[0] == (0, 1) and got[1] == (0,) and got[3] == (1,)
    assert _checkers_running() == []


def _checkers_running() -> list[int]:
    """Processes still running the child's source (it is in their command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"_kill_the_rest" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_the_jail_holds(jail: tuple[str, ...]) -> None:
    escape = (
        "import os\ndef f(x):\n    os.mkdir('x')\n    os.chroot('x')\n"
        "    for _ in range(64):\n        os.chdir('..')\n    os.chroot('.')\n"
        "    return os.listdir('/')",
        ("assert f(0) != []",),
    )
    mkdir = ("import os\ndef f(x):\n    os.mkdir('d')\n    return 1", ("assert f(0)",))
    rechroot = ("import os\ndef f(x):\n    os.chroot('/')\n    return 1", ("assert f(0)",))
    interrupt = (
        "import os, signal\ndef f(x):\n    os.kill(1, signal.SIGINT)\n    return 1",
        ("assert f(0)",),
    )
    honest = ("def f(x):\n    return x", ("assert f(1) == 1",))
    got = run_jobs([escape, mkdir, rechroot, interrupt, honest], prefix=jail)
    assert got == [(0,), (0,), (0,), (1,), (1,)]  # the batch survives the interrupt


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers for x86_64")
def test_the_child_sees_no_host_ipc_and_no_host_keys(jail: tuple[str, ...]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    segment = libc.shmget(0x4B4A, 4096, 0o1600)  # IPC_CREAT, mode 600
    key = libc.syscall(248, b"user", b"kanjia-test", b"secret", 6, -3)  # add_key, session
    try:
        assert segment >= 0
        find_segment = (
            "import ctypes\ndef f(x):\n    return ctypes.CDLL(None).shmget(0x4B4A, 0, 0)",
            ("assert f(0) < 0",),
        )
        find_key = (
            "import ctypes\ndef f(x):\n"
            "    return ctypes.CDLL(None).syscall(250, 10, -3, b'user', b'kanjia-test', 0)",
            ("assert f(0) < 0",),
        )
        assert run_jobs([find_segment, find_key], prefix=jail) == [(1,), (1,)]
    finally:
        if segment >= 0:
            libc.shmctl(segment, 0, None)  # IPC_RMID
        if key >= 0:
            libc.syscall(250, 21, key)  # KEYCTL_INVALIDATE


def test_the_child_refuses_to_run_outside_its_own_pid_namespace() -> None:
    assert run_jobs([("def f(x):\n    return x", ("assert f(1) == 1",))], prefix=()) is None


def test_a_checker_refuses_without_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kanjia.lab._codecheck.isolation_prefix", lambda: None)
    with pytest.raises(CodeCheckUnavailable):
        CodeChecker().scores([_coded("return x", "f"), TESTS])


def test_pathological_answers_are_no_code() -> None:
    assert extract_code(f"{FENCE}python\n" + "-" * 200_000 + f"\n{FENCE}") == ""
    deep = "def f(x):\n    return " + "+".join(["1"] * 20_000)
    assert extract_code(f"{FENCE}python\n{deep}\n{FENCE}") == ""


def test_scores_use_only_the_other_answers_tests(jail: tuple[str, ...]) -> None:
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


def test_check_cascade_stops_when_the_cheap_code_passes(jail: tuple[str, ...]) -> None:
    run = CascadeRun(_check_policy(), [0.0, 0.0, 0.0], "", CodeChecker())
    run.observe("tester", TESTS)
    assert run.next_model() == "coder"  # the tester cannot vouch for itself
    run.observe("coder", _coded("return x * 2"))
    assert run.next_model() is None and run.answer() == "coder" and run.quality == 1.0


def test_check_cascade_escalates_when_the_cheap_code_fails(jail: tuple[str, ...]) -> None:
    run = CascadeRun(_check_policy(), [0.0, 0.0, 0.0], "", CodeChecker())
    run.observe("tester", TESTS)
    run.observe("coder", _coded("return x + 2"))
    assert run.next_model() == "expert"
    run.observe("expert", _coded("return x * 2"))
    assert run.answer() == "expert" and run.called == ("tester", "coder", "expert")


def test_without_a_checker_a_check_cascade_calls_its_best_model_alone() -> None:
    run = CascadeRun(_check_policy(), [0.0, 0.0, 0.0])
    assert run.called == ()
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


def test_training_finds_and_replays_a_check_cascade(
    code_dir: Path, tmp_path: Path, jail: tuple[str, ...]
) -> None:
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


def test_the_gateway_never_runs_code(code_dir: Path, tmp_path: Path) -> None:
    from kanjia.config import load_settings
    from kanjia.server import build_app

    path = tmp_path / "code.npz"
    train_router(load_dataset(code_dir), TrainOptions(folds=3, n_buckets=1 << 10)).save(path)
    quality = build_app(
        load_settings(None, quality_router=str(path)), env={}
    ).services.planner.quality
    assert isinstance(quality, QualityRouter) and quality.checker is None


def test_the_cli_says_in_one_line_when_it_cannot_isolate(
    code_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from kanjia.cli.main import cli

    monkeypatch.setattr("kanjia.lab._codecheck.isolation_prefix", lambda: None)
    out = tmp_path / "r.npz"
    args = ["router", "train", "--data", str(code_dir), "--out", str(out), "--code-checks"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and not out.exists()
    assert result.output.count("\n") == 1 and "--code-checks: code checks need" in result.output
