"""Tests wait on events, not fixed sleeps (issue 16): a ``time.sleep(0.3)`` that hopes
something has happened by then is slow when it is not needed and flaky when the machine is
loaded. This scans every test module with ``ast`` and fails on a sleep of a constant
duration unless it is

- inside a loop body (``while``/``for``): polling a condition, or pacing a load;
- inside a function whose name says it simulates time passing (a fake server's handler,
  a slow upstream): latency is what it models;
- a zero sleep (``asyncio.sleep(0)``): a yield to the event loop, not a wait;
- on the allow-list below, with the reason it is not synchronisation.

Sleeps of a computed duration (``asyncio.sleep(seconds)``, jitter) are left alone: they
are durations chosen by the test (how long a load runs), not a guess at how long
something else takes."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

#: module names whose ``sleep`` is a fixed wait
_SLEEPERS = {"time", "asyncio", "anyio", "trio"}

#: an enclosing helper (not a ``test_`` function) with a word starting so in its name
#: simulates time passing
_LATENCY = ("slow", "latenc", "delay", "lag", "stall", "handl", "fake")

#: (path relative to tests/, enclosing function) -> why a fixed sleep there is fine
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True, slots=True)
class Sleep:
    path: str
    line: int
    function: str
    call: str


def _is_fixed_sleep(node: ast.Call) -> str | None:
    """The call's text if it is a sleep (or a never-set Event's wait) of a constant,
    non-zero duration."""
    if len(node.args) != 1 or node.keywords:
        return None
    arg = node.args[0]
    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, int | float)
            and not isinstance(arg.value, bool) and arg.value > 0):
        return None
    func = node.func
    sleep = (isinstance(func, ast.Name) and func.id == "sleep") or (
        isinstance(func, ast.Attribute) and func.attr == "sleep"
        and isinstance(func.value, ast.Name) and func.value.id in _SLEEPERS)
    # ``threading.Event().wait(0.5)``: an event nobody can set is a sleep
    fresh_event_wait = (isinstance(func, ast.Attribute) and func.attr == "wait"
                        and isinstance(func.value, ast.Call)
                        and isinstance(func.value.func, ast.Attribute | ast.Name)
                        and (func.value.func.attr if isinstance(func.value.func, ast.Attribute)
                             else func.value.func.id) == "Event")
    return ast.unparse(node) if sleep or fresh_event_wait else None


def _simulates_latency(function: str) -> bool:
    words = function.lower().strip("_").split("_")
    return words[0] != "test" and any(w.startswith(_LATENCY) for w in words)


class _Finder(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.functions: list[str] = []
        self.loops = 0  # loops around the current point, inside the current function
        self.found: list[Sleep] = []

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        outer_loops, self.loops = self.loops, 0  # a loop outside the function does not count
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()
        self.loops = outer_loops

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def _loop(self, node: ast.For | ast.AsyncFor | ast.While) -> None:
        for child in (node.target, node.iter) if not isinstance(node, ast.While) \
                else (node.test,):
            self.visit(child)
        self.loops += 1
        for stmt in [*node.body, *node.orelse]:
            self.visit(stmt)
        self.loops -= 1

    visit_For = _loop
    visit_AsyncFor = _loop
    visit_While = _loop

    def visit_Call(self, node: ast.Call) -> None:
        call = _is_fixed_sleep(node)
        if call is not None and not self.loops \
                and not any(_simulates_latency(f) for f in self.functions):
            self.found.append(Sleep(self.path, node.lineno,
                                    ".".join(self.functions) or "<module>", call))
        self.generic_visit(node)


def fixed_sleeps(source: str, path: str = "<test>") -> list[Sleep]:
    finder = _Finder(path)
    finder.visit(ast.parse(source, path))
    return finder.found


def _scan() -> list[Sleep]:
    found: list[Sleep] = []
    for file in sorted(TESTS.rglob("*.py")):
        rel = file.relative_to(TESTS).as_posix()
        found.extend(fixed_sleeps(file.read_text(encoding="utf-8"), rel))
    return found


def test_no_test_waits_on_a_fixed_sleep() -> None:
    found = _scan()
    bad = [s for s in found if (s.path, s.function) not in ALLOWED]
    assert not bad, "fixed sleeps used to wait; wait on the event or poll the condition " \
        "with a deadline instead (tests/_waiting.py):\n" + "\n".join(
            f"  tests/{s.path}:{s.line} in {s.function}: {s.call}" for s in bad)
    stale = set(ALLOWED) - {(s.path, s.function) for s in found}
    assert not stale, f"allow-list entries that match no sleep any more: {sorted(stale)}"


@pytest.mark.parametrize(("source", "flagged"), [
    ("import time\ndef test_x():\n    start()\n    time.sleep(0.3)\n    check()\n", True),
    ("import asyncio\nasync def test_x():\n    await asyncio.sleep(1)\n", True),
    ("from time import sleep\ndef test_x():\n    sleep(0.2)\n", True),
    ("import threading\ndef test_x():\n    threading.Event().wait(0.5)\n", True),
    ("import time\ntime.sleep(2)\n", True),
    ("import time\nfor _ in range(3):\n    def test_x():\n        time.sleep(1)\n", True),
    ("import time\ndef test_x():\n    while not ready():\n        time.sleep(0.05)\n", False),
    ("import asyncio\nasync def test_x():\n    for _ in range(100):\n"
     "        if ok():\n            break\n        await asyncio.sleep(0.02)\n", False),
    ("import asyncio\nasync def slow_handler(request):\n    await asyncio.sleep(0.5)\n", False),
    ("import asyncio\nasync def handle(request):\n    await asyncio.sleep(0.5)\n", False),
    ("import time\ndef test_slow_path():\n    time.sleep(0.5)\n", True),  # a test, not a fake
    ("import time\ndef flagged():\n    time.sleep(0.5)\n", True),
    ("import asyncio\nasync def test_x():\n    await asyncio.sleep(0)\n", False),
    ("import asyncio\nasync def test_x(seconds):\n    await asyncio.sleep(seconds)\n", False),
    ("def test_x(ev):\n    ev.wait(1.0)\n", False),  # waits on an event someone sets
    ("def test_x():\n    src = 'time.sleep(60)'\n", False),  # text, not a call
])
def test_the_scanner_flags_fixed_sleeps_only(source: str, flagged: bool) -> None:
    assert bool(fixed_sleeps(source)) is flagged
