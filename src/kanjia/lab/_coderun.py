"""The child side of a code check, run as ``unshare -rnpfmiu --kill-child python -I -S -c
<this file's text>``: process 1 of fresh user, mount, PID, network, IPC and UTS
namespaces, with a session keyring of its own.

It is the trusted reporter and runs no model code itself. It reads the jobs from stdin,
imports the standard modules answers commonly use, mounts an empty read-only tmpfs on its
working directory and ``chroot``s into it, then gives up every capability (bounding set
too), sets no-new-privileges and makes itself undumpable (no ptrace of it). From then on
no file of the machine is visible, nothing can be written or imported, and the chroot
cannot be undone. For each job it forks one process, which limits itself (memory, CPU,
file size, processes, open files), loads the job's code and runs each test under an
alarm. That process reports through its own pipe only: one byte when the code has loaded,
then one byte per test. Whatever it or its descendants write elsewhere reaches nobody, and
the reporter reads at most ``len(tests) + 1`` bytes. After each job the reporter kills
every other process in the namespace. Once all the jobs are done, it writes one JSON list
of results to the pipe it was given on fd 1. It refuses to start unless it is process 1 of
its own PID namespace.

A job is ``[code, [test, ...]]``. Its result is ``null`` when the code does not load, else
a list of 0/1, one per test. A test missing when the job's time is up counts as 0. If a
test calls a function the code does not define, that name is bound to the code's main
function (models name their functions differently)."""

import ast
import contextlib
import ctypes
import json
import os
import resource
import select
import signal
import sys
import time
from typing import Any

PRELOAD = (
    "array", "base64", "binascii", "bisect", "calendar", "cmath", "collections",
    "collections.abc", "copy", "dataclasses", "datetime", "decimal", "difflib", "enum",
    "fractions", "functools", "hashlib", "heapq", "itertools", "json", "math", "numbers",
    "operator", "random", "re", "statistics", "string", "struct", "textwrap", "typing",
    "unicodedata",
)  # fmt: skip


def _limit(memory_mb: int, cpu_s: int) -> None:
    for kind, value in (
        (resource.RLIMIT_AS, memory_mb << 20),
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_NOFILE, 16),
        (resource.RLIMIT_NPROC, 8),
        (resource.RLIMIT_CORE, 0),
    ):
        _, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
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


def _job(code: str, tests: list[str], out: int, request: dict[str, Any]) -> None:
    """In the forked process: load the code, run the tests, report byte by byte."""
    _limit(int(request["memory_mb"]), int(request["cpu_s"]))
    step_s = float(request["step_s"])
    signal.signal(signal.SIGALRM, _alarm)
    namespace: dict[str, object] = {"__name__": "candidate"}
    try:
        tree = ast.parse(code)
        signal.setitimer(signal.ITIMER_REAL, step_s * 2)
        exec(compile(tree, "<answer>", "exec"), namespace)
        signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException:
        os._exit(0)
    os.write(out, b"L")
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    builtins = set(dir(__builtins__))
    for test in tests:
        passed = b"0"
        try:
            test_tree = ast.parse(test)
            env = dict(namespace)
            for name in _called_names(test_tree):
                if name not in env and name not in builtins and functions:
                    env[name] = namespace[_main_function(functions, name)]
            signal.setitimer(signal.ITIMER_REAL, step_s)
            exec(compile(test_tree, "<test>", "exec"), env)
            signal.setitimer(signal.ITIMER_REAL, 0)
            passed = b"1"
        except BaseException:
            with contextlib.suppress(BaseException):
                signal.setitimer(signal.ITIMER_REAL, 0)
        with contextlib.suppress(BaseException):
            os.write(out, passed)
    os._exit(0)


def _kill_the_rest() -> None:
    """Kill every process of the namespace but this one, and reap them."""
    with contextlib.suppress(OSError):
        os.kill(-1, signal.SIGKILL)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def _report(
    code: str, tests: list[str], result_fd: int, request: dict[str, Any]
) -> list[int] | None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        os.close(result_fd)
        try:
            _job(code, tests, write_end, request)
        finally:
            os._exit(0)
    os.close(write_end)
    wanted = len(tests) + 1
    got = b""
    deadline = time.monotonic() + float(request["step_s"]) * (len(tests) + 3)
    while len(got) < wanted:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([read_end], [], [], left)[0]:
            break
        chunk = os.read(read_end, wanted - len(got))
        if not chunk:
            break
        got += chunk
    os.close(read_end)
    _kill_the_rest()
    if not got.startswith(b"L") or any(b not in b"01" for b in got[1:]):
        return None
    bits = [1 if b == ord("1") else 0 for b in got[1:]]
    return bits + [0] * (len(tests) - len(bits))


MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 4, 24, 38
#: keyctl(2) by architecture; KEYCTL_JOIN_SESSION_KEYRING = 1 with no name: a new keyring
KEYCTL = {"x86_64": 250, "aarch64": 219}


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _jail() -> None:
    """Empty read-only root, then no capabilities: raises OSError if any step fails."""
    libc = ctypes.CDLL(None, use_errno=True)

    def check(result: int, what: str) -> None:
        if result != 0:
            raise OSError(ctypes.get_errno(), what)

    keyctl = KEYCTL.get(os.uname().machine)
    if keyctl is None or libc.syscall(keyctl, 1, None) < 0:  # not the caller's keyring
        raise OSError(ctypes.get_errno(), "session keyring")

    flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    check(libc.mount(b"none", b".", b"tmpfs", flags, b"size=4k,mode=555"), "mount")
    os.chdir(os.getcwd())  # step onto the new mount
    os.chroot(".")
    os.chdir("/")
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    check(libc.capset(ctypes.byref(_CapHeader(0x20080522, 0)), (_CapData * 2)()), "capset")
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "dumpable")


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # process 1 ignores what it has no handler for
    if os.getpid() != 1:
        sys.exit(3)  # not in a PID namespace of its own: kill(-1) would reach the machine
    request = json.loads(sys.stdin.read())
    result_fd = os.dup(1)
    sink = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(sink, fd)
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    _jail()
    results = [_report(code, tests, result_fd, request) for code, tests in request["jobs"]]
    os.write(result_fd, json.dumps(results).encode("utf-8"))
    os.close(result_fd)


main()
