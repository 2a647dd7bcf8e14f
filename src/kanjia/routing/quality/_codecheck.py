"""Code answers checked by running them (CodeT / AlphaCode style): the code of one model's
answer is run against the ``assert`` tests that the *other* called models wrote, and the
share it passes says how far to trust it. No test from the prompt is needed, and no model
or task is assumed: any answer with a function in a code block is code, any ``assert``
line in an answer (a ``[TESTS]`` block, a code block) is a test.

Running model output is opt-in at run time (``CodeChecker``): the code goes to a separate
``python -I -S`` process with an empty environment, a fresh temporary directory, limits on
memory, CPU, open files and file size, a per-test alarm and a wall-clock kill, and, where
the machine allows unprivileged namespaces, no network at all (``unshare -rn``;
``CodeChecker.network_cut`` says whether it does). That is isolation from mistakes, not a
hardened sandbox: run it where model output may be executed."""

from __future__ import annotations

import ast
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

_BLOCK = re.compile(
    r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```|\[PYTHON\](.*?)\[/PYTHON\]", re.S | re.I
)
_TESTS = re.compile(r"\[TESTS\](.*?)(?:\[/TESTS\]|$)", re.S)
_KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
MAX_TESTS = 12

#: One job's outcome: ``None`` when the code did not load, else 0/1 per test.
Passes = tuple[int, ...] | None


def _blocks(text: str) -> list[str]:
    return [a or b for a, b in _BLOCK.findall(text)]


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def extract_code(text: str | None) -> str:
    """The definitions (imports, functions, classes, upper-case constants) of the first
    code block that defines a function, with the imports of the blocks before it; example
    calls and prints are left out. Empty when the answer has no such block."""
    kept: list[str] = []
    for block in _blocks(text or ""):
        tree = _parse(block)
        if tree is None:
            continue
        for node in tree.body:
            constant = isinstance(node, ast.Assign) and all(
                isinstance(t, ast.Name) and t.id.isupper() for t in node.targets
            )
            if isinstance(node, _KEEP) or constant:
                kept.append(ast.unparse(node))
        if any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in tree.body):
            return "\n".join(kept)
    return ""


def extract_tests(text: str | None) -> tuple[str, ...]:
    """The ``assert`` lines of an answer that call a function, at most :data:`MAX_TESTS`."""
    text = text or ""
    out: list[str] = []
    for block in _TESTS.findall(text) + _blocks(text):
        for line in block.splitlines():
            line = line.strip()
            if not line.startswith("assert ") or line in out:
                continue
            tree = _parse(line)
            if tree is not None and any(
                isinstance(n, ast.Call) and isinstance(n.func, ast.Name) for n in ast.walk(tree)
            ):
                out.append(line)
            if len(out) >= MAX_TESTS:
                return tuple(out)
    return tuple(out)


def rank_answers(scores: Sequence[float], prior: Sequence[float]) -> tuple[int, float]:
    """(position of the answer to return, its score): the best score, ties (and answers
    nobody wrote tests for) going to the highest ``prior`` (in [0, 1]: the model's train
    accuracy on the task); the score is NaN when no answer could be checked."""
    keys = [(-1.0 if math.isnan(s) else s) + 1e-3 * p for s, p in zip(scores, prior, strict=True)]
    best = max(range(len(keys)), key=keys.__getitem__)
    return best, scores[best]


@dataclass(frozen=True)
class SandboxLimits:
    memory_mb: int = 512
    cpu_s: int = 5
    step_s: float = 0.5  # per test (twice that to load the code)
    wall_s: float = 10.0  # the whole batch
    cut_network: bool = True  # run in a new network namespace where the machine allows it


def network_prefix() -> tuple[str, ...]:
    """``unshare -rn``: a new user and network namespace (no interface but a down
    loopback), when this machine lets an unprivileged process make one; else nothing."""
    exe = shutil.which("unshare")
    if exe is None:
        return ()
    try:
        probe = subprocess.run(
            [exe, "-rn", sys.executable, "-I", "-S", "-c", "pass"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={},
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return (exe, "-rn") if probe.returncode == 0 else ()


def _child_source() -> str:
    return resources.files("kanjia.routing.quality").joinpath("_coderun.py").read_text()


def run_jobs(
    jobs: Sequence[tuple[str, Sequence[str]]],
    limits: SandboxLimits = SandboxLimits(),
    prefix: Sequence[str] = (),
) -> list[Passes]:
    """Run each ``(code, tests)`` job in one sandboxed child process (started through
    ``prefix``, e.g. :func:`network_prefix`); a job whose child dies or overruns counts as
    code that did not load (``None``)."""
    if not jobs:
        return []
    request = json.dumps(
        {
            "jobs": [[code, list(tests)] for code, tests in jobs],
            "memory_mb": limits.memory_mb,
            "cpu_s": limits.cpu_s,
            "step_s": limits.step_s,
        }
    )
    with tempfile.TemporaryDirectory(prefix="kanjia-check-") as workdir:
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-I", "-S", "-c", _child_source()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=workdir,
            env={},
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(request.encode("utf-8"), timeout=limits.wall_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return [None] * len(jobs)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    try:
        decoded = json.loads(out.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        decoded = None
    if not isinstance(decoded, list) or len(decoded) != len(jobs):
        return [None] * len(jobs)
    return [None if r is None else tuple(int(bool(v)) for v in r) for r in decoded]


Job = tuple[str, tuple[str, ...]]


@dataclass
class CodeChecker:
    """Runs code checks for cascades, remembering the last ``memo_size`` results by
    (code, tests): a replay of recorded answers and a repeated request do not run the same
    code twice. A batch whose child dies is run again one job per child, so one bad answer
    cannot sink the others."""

    limits: SandboxLimits = SandboxLimits()
    memo_size: int = 4096
    _memo: OrderedDict[Job, Passes] = field(default_factory=OrderedDict)
    _prefix: tuple[str, ...] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def network_cut(self) -> bool:
        """Whether the children run without a network (probed once, on first use)."""
        return bool(self._start())

    def _start(self) -> tuple[str, ...]:
        if self._prefix is None:
            self._prefix = network_prefix() if self.limits.cut_network else ()
        return self._prefix

    def run(self, jobs: Sequence[Job]) -> list[Passes]:
        """Each job's result; safe to call from several threads (the gateway's workers)."""
        with self._lock:
            found = {j: self._memo[j] for j in jobs if j in self._memo}
        missing = [j for j in dict.fromkeys(jobs) if j not in found]
        if not missing:
            return [found[j] for j in jobs]
        prefix = self._start()
        results = run_jobs(missing, self.limits, prefix)
        if len(missing) > 1 and all(r is None for r in results):
            results = [run_jobs([job], self.limits, prefix)[0] for job in missing]
        with self._lock:
            for job, result in zip(missing, results, strict=True):
                found[job] = self._memo[job] = result
            while len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
        return [found[j] for j in jobs]

    def scores(self, responses: Sequence[str | None]) -> list[float]:
        """Per answer: the share of the other answers' tests its code passes (0 when it has
        no code that loads); NaN when the other answers wrote no tests."""
        codes = [extract_code(r) for r in responses]
        tests = [extract_tests(r) for r in responses]
        jobs: list[Job] = []
        for j, code in enumerate(codes):
            foreign = tuple(t for k, ts in enumerate(tests) if k != j for t in ts)
            jobs.append((code, foreign))
        runnable = [i for i, (code, foreign) in enumerate(jobs) if code and foreign]
        results = self.run([jobs[i] for i in runnable])
        out = [math.nan if not jobs[j][1] else 0.0 for j in range(len(jobs))]
        for i, passes in zip(runnable, results, strict=True):
            out[i] = sum(passes) / len(passes) if passes else 0.0
        return out
