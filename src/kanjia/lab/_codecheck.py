"""Code answers checked by running them (CodeT / AlphaCode style): the code of one model's
answer is run against the ``assert`` tests that the *other* called models wrote, and the
share it passes says how far to trust it. No test from the prompt is needed, and no model
or task is assumed: any answer with a function in a code block is code, any ``assert``
line in an answer (a ``[TESTS]`` block, a code block) is a test.

Running model output is opt-in (``kanjia router train/eval --code-checks``; the gateway never
does it), and it runs only where the machine lets an unprivileged process make user,
mount, PID, network, IPC and UTS namespaces (``unshare -rnpfmiu``); elsewhere
:class:`CodeCheckUnavailable` is raised. The child (``_coderun``) sees no network, no file
of the machine (an empty read-only tmpfs is its root), no environment and no other
process, and has no capabilities. Each job runs in a process of its own, under limits on
memory, CPU, file size, processes and open files, with a per-test alarm, and is killed
with everything it started. The whole child is killed after a wall-clock limit. What is
left open: an answer can fake its own result (a returned object whose ``__eq__`` always
says yes passes any test), and the memory of a job's processes is capped per process, not
by a cgroup. This isolates mistakes in data one chose to run; it is not a hardened
sandbox."""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
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


MAX_ANSWER_CHARS = 20_000
MAX_REPORT_BYTES = 1 << 20


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _unparse(node: ast.AST) -> str | None:
    try:
        return ast.unparse(node)
    except (ValueError, RecursionError, MemoryError):
        return None


def extract_code(text: str | None) -> str:
    """The definitions (imports, functions, classes, upper-case constants) of the first
    code block that defines a function, with the imports of the blocks before it; example
    calls and prints are left out. Empty when the answer has no such block."""
    kept: list[str] = []
    for block in _blocks((text or "")[:MAX_ANSWER_CHARS]):
        tree = _parse(block)
        if tree is None:
            continue
        for node in tree.body:
            constant = isinstance(node, ast.Assign) and all(
                isinstance(t, ast.Name) and t.id.isupper() for t in node.targets
            )
            source = _unparse(node) if isinstance(node, _KEEP) or constant else None
            if source is not None:
                kept.append(source)
        if any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in tree.body):
            return "\n".join(kept)
    return ""


def extract_tests(text: str | None) -> tuple[str, ...]:
    """The ``assert`` lines of an answer that call a function, at most :data:`MAX_TESTS`."""
    text = (text or "")[:MAX_ANSWER_CHARS]
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


class CodeCheckUnavailable(RuntimeError):
    """This machine cannot isolate a code check (no unprivileged namespaces)."""


@dataclass(frozen=True)
class SandboxLimits:
    memory_mb: int = 256  # per process (a job may have up to 8)
    cpu_s: int = 5  # per job process
    step_s: float = 0.5  # per test (twice that to load the code)
    slack_s: float = 5.0  # the whole child: the jobs' time plus this


ISOLATION = ("-rnpfmiu", "--kill-child")  # + IPC and UTS namespaces


def isolation_prefix() -> tuple[str, ...] | None:
    """``unshare -rnpfmiu --kill-child`` when this machine lets an unprivileged process
    make the namespaces (tried once with a real child), else ``None``."""
    exe = shutil.which("unshare")
    if exe is None:
        return None
    prefix = (exe, *ISOLATION)
    try:
        probe = run_jobs([("def f(x):\n    return x", ("assert f(1) == 1",))], prefix=prefix)
    except OSError:
        return None
    return prefix if probe == [(1,)] else None


def _child_source() -> str:
    return resources.files("kanjia.lab").joinpath("_coderun.py").read_text()


def _valid(result: object, tests: Sequence[str]) -> Passes:
    if not isinstance(result, list) or len(result) != len(tests):
        return None
    if not all(v in (0, 1) and type(v) is int for v in result):
        return None
    return tuple(result)


def run_jobs(
    jobs: Sequence[tuple[str, Sequence[str]]],
    limits: SandboxLimits = SandboxLimits(),
    *,
    prefix: Sequence[str],
) -> list[Passes] | None:
    """Run the ``(code, tests)`` jobs in one child started through ``prefix`` (see
    :func:`isolation_prefix`): per job, ``None`` when its code did not load, else 0/1 per
    test. ``None`` for the whole batch when the child failed or overran (nothing is known
    about the jobs then)."""
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
    wall = limits.slack_s + sum(limits.step_s * (len(t) + 3) for _, t in jobs)
    with tempfile.TemporaryDirectory(prefix="kanjia-check-", ignore_cleanup_errors=True) as workdir:
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
            out, _ = proc.communicate(request.encode("utf-8"), timeout=wall)
        except subprocess.TimeoutExpired:
            return None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
    if proc.returncode != 0 or len(out) > MAX_REPORT_BYTES:
        return None
    try:
        decoded = json.loads(out.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(decoded, list) or len(decoded) != len(jobs):
        return None
    return [None if r is None else _valid(r, t) for r, (_, t) in zip(decoded, jobs, strict=True)]


Job = tuple[str, tuple[str, ...]]


def cross_jobs(
    responses: Sequence[str | None],
) -> tuple[list[tuple[int, int, Job]], list[int]]:
    """The jobs that check one row's answers against each other: ``(j, k, (code of j,
    tests of k))`` for every answer ``j`` with code and every other answer ``k`` with
    tests; and how many tests each answer wrote."""
    codes = [extract_code(r) for r in responses]
    tests = [extract_tests(r) for r in responses]
    jobs = [
        (j, k, (codes[j], tests[k]))
        for j in range(len(codes))
        for k in range(len(tests))
        if j != k and codes[j] and tests[k]
    ]
    return jobs, [len(t) for t in tests]


@dataclass
class CodeChecker:
    """Runs code checks for cascades (offline: ``router train/eval --code-checks``). It
    probes the machine's isolation once, on first use, and raises
    :class:`CodeCheckUnavailable` without it. It remembers the last ``memo_size`` results by
    (code, tests), so replaying recorded answers does not run the same code twice. A batch
    whose child fails is remembered for nothing."""

    limits: SandboxLimits = SandboxLimits()
    memo_size: int = 4096
    _memo: OrderedDict[Job, Passes] = field(default_factory=OrderedDict)
    _prefix: tuple[str, ...] | None = None
    _refused: bool = False  # the probe failed: do not try again

    def ensure_available(self) -> tuple[str, ...]:
        """The isolation prefix; :class:`CodeCheckUnavailable` when there is none."""
        if self._prefix is None:
            prefix = None if self._refused else isolation_prefix()
            if prefix is None:
                self._refused = True
                raise CodeCheckUnavailable(
                    "code checks need unprivileged user, mount, PID, network, IPC and "
                    "UTS namespaces (unshare -rnpfmiu), which this machine does not allow"
                )
            self._prefix = prefix
        return self._prefix

    def run(self, jobs: Sequence[Job]) -> list[Passes]:
        """Each job's result (``None`` also when its batch failed)."""
        prefix = self.ensure_available()
        found = {j: self._memo[j] for j in jobs if j in self._memo}
        missing = [j for j in dict.fromkeys(jobs) if j not in found]
        if not missing:
            return [found[j] for j in jobs]
        results = run_jobs(missing, self.limits, prefix=prefix)
        for job, result in zip(missing, results or [None] * len(missing), strict=True):
            found[job] = result
            if results is not None:
                self._memo[job] = result
        while len(self._memo) > self.memo_size:
            self._memo.popitem(last=False)
        return [found[j] for j in jobs]

    def scores(self, responses: Sequence[str | None]) -> list[float]:
        """Per answer: the share of the other answers' tests its code passes (0 when it has
        no code that loads); NaN when the other answers wrote no tests. One job per (code,
        another answer's tests), as the offline search runs them."""
        jobs, written = cross_jobs(responses)
        passed = [0] * len(responses)
        for (j, _, _), result in zip(jobs, self.run([job for _, _, job in jobs]), strict=True):
            passed[j] += sum(result) if result else 0
        out = []
        for j in range(len(responses)):
            foreign = sum(written) - written[j]
            out.append(passed[j] / foreign if foreign else math.nan)
        return out
