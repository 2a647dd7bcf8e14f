"""The child side of a code check, run as ``python -I -S -c <this file's text>``: it limits
itself (memory, CPU, file size, open files), reads jobs as JSON from stdin, runs each job's
code and then each test against it with a wall-clock alarm, and writes one JSON list of
results to the pipe it was given on fd 1. Output of the code under test goes nowhere.

A job is ``[code, [test, ...]]``; its result is ``null`` when the code does not load, else a
list of 0/1, one per test. A test calling a function the code does not define is run with
that name bound to the code's main function (models name their functions differently)."""

import ast
import contextlib
import json
import os
import resource
import signal
import sys


def _limit(memory_mb: int, cpu_s: int) -> None:
    for kind, value in (
        (resource.RLIMIT_AS, memory_mb << 20),
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_NOFILE, 32),
        (resource.RLIMIT_NPROC, 0),
        (resource.RLIMIT_CORE, 0),
    ):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(kind, (value, value))


class _Timeout(BaseException):
    pass


def _alarm(*_: object) -> None:
    raise _Timeout()


def _called_names(tree: ast.AST) -> set[str]:
    calls = (n for n in ast.walk(tree) if isinstance(n, ast.Call))
    return {c.func.id for c in calls if isinstance(c.func, ast.Name)}


def _main_function(functions: list[str], wanted: str) -> str:
    if len(functions) == 1:
        return functions[0]
    words = set(wanted.lower().split("_"))
    return max(reversed(functions), key=lambda f: len(words & set(f.lower().split("_"))))


def _run_job(code: str, tests: list[str], step_s: float) -> list[int] | None:
    namespace: dict[str, object] = {"__name__": "candidate"}
    try:
        tree = ast.parse(code)
        signal.setitimer(signal.ITIMER_REAL, step_s * 2)
        exec(compile(tree, "<answer>", "exec"), namespace)
    except BaseException:
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    builtins = set(dir(__builtins__))
    out = []
    for test in tests:
        try:
            test_tree = ast.parse(test)
            env = dict(namespace)
            for name in _called_names(test_tree):
                if name not in env and name not in builtins and functions:
                    env[name] = namespace[_main_function(functions, name)]
            signal.setitimer(signal.ITIMER_REAL, step_s)
            exec(compile(test_tree, "<test>", "exec"), env)
            out.append(1)
        except BaseException:
            out.append(0)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return out


def main() -> None:
    request = json.loads(sys.stdin.read())
    _limit(int(request["memory_mb"]), int(request["cpu_s"]))
    result = os.fdopen(os.dup(1), "w")
    sink = open(os.devnull, "w")  # noqa: SIM115 - for the whole life of the process
    os.dup2(sink.fileno(), 1)
    os.dup2(sink.fileno(), 2)
    sys.stdout = sys.stderr = sink
    sys.stdin = open(os.devnull)  # noqa: SIM115
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the size limit fails, not kills
    step_s = float(request["step_s"])
    results = [_run_job(code, tests, step_s) for code, tests in request["jobs"]]
    result.write(json.dumps(results))
    result.flush()


main()
