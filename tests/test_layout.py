"""The package's shape: the gateway imports none of the heavy libraries, no kanjia module
takes part in an import cycle, and nothing at run time imports the router lab."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import kanjia

PACKAGE = Path(kanjia.__file__).parent
HEAVY = ("pandas", "pyarrow", "matplotlib", "scipy", "sklearn")


def _import_graph() -> dict[str, set[str]]:
    """The graph of ``_build_graph``, built in a fresh interpreter: in a process where an
    earlier test caught a RecursionError (the fuzz tests), CPython 3.11's ``ast.parse``
    can fail with "AST constructor recursion depth mismatch"."""
    out = subprocess.run([sys.executable, __file__], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    return {k: set(v) for k, v in json.loads(out).items()}


def _build_graph() -> dict[str, set[str]]:
    """kanjia module -> the kanjia modules it imports anywhere in its body (lazy imports
    too: a cycle through a function-level import is still a cycle in the design), leaving
    out ``if TYPE_CHECKING:`` blocks."""
    files = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for node in ast.walk(block)
        }
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in files else base)
            graph[name].update(t for t in targets if t in files and t != name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles_between_kanjia_modules() -> None:
    graph = _import_graph()
    assert "kanjia.routing.quality._router" in graph  # the walk sees the package
    assert _cycles(graph) == []


def test_nothing_at_run_time_imports_the_lab() -> None:
    graph = _import_graph()
    users = sorted(m for m, deps in graph.items()
                   if not m.startswith("kanjia.lab") and any(d.startswith("kanjia.lab")
                                                            for d in deps))
    assert users == ["kanjia.cli.router"]


def test_the_sandbox_imports_no_other_kanjia_module() -> None:
    """The sandbox is the oracle the vendor adapters are tested against: it shares no code
    with them (nor with the rest of kanjia)."""
    graph = _import_graph()
    sandbox = [m for m in graph if m.startswith("kanjia.sandbox")]
    assert "kanjia.sandbox._vendors.anthropic" in sandbox  # the walk sees the vendor modules
    outside = sorted({d for m in sandbox for d in graph[m]
                      if d != "kanjia" and not d.startswith("kanjia.sandbox")})
    assert outside == []


def test_the_ledger_imports_nothing_of_metering() -> None:
    """Metering (keys, budgets, limits) sits on the ledger, never the other way round."""
    graph = _import_graph()
    ledger = [m for m in graph if m.startswith("kanjia.ledger")]
    assert "kanjia.ledger.store._migrations" in ledger  # the walk sees the store
    assert any(d.startswith("kanjia.ledger") for d in graph["kanjia.metering._gate"])
    above = sorted({d for m in ledger for d in graph[m] if d.startswith("kanjia.metering")})
    assert above == []

def test_the_gateway_imports_no_heavy_library() -> None:
    code = ("import sys, kanjia.server, kanjia.server.run, kanjia.routing.quality\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
            "print('kanjia.lab' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split("\n")
    assert out[:2] == ["[]", "False"]


def test_architecture_md_lists_every_package() -> None:
    """ARCHITECTURE.md's package table names every package and top-level module."""
    import re

    doc = (PACKAGE.parents[1] / "ARCHITECTURE.md").read_text(encoding="utf-8")
    listed = {m.rstrip("/") for m in re.findall(r"^\| `([^`]+)` \|", doc, re.M)}
    present = {p.name for p in PACKAGE.iterdir() if p.is_dir() and any(p.glob("*.py"))}
    present |= {p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py",
                                                                       "__main__.py")}
    present |= {f"routing/{p.name}" for p in (PACKAGE / "routing").iterdir()
                if p.is_dir() and any(p.glob("*.py"))}
    assert listed == present


def _package_lines(listed: set[str]) -> dict[str, int]:
    """Lines of Python per row of ARCHITECTURE.md's table: a package counts its subpackages,
    except those with a row of their own."""
    counts: dict[str, int] = {}
    for name in listed:
        path = PACKAGE / name
        files = [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))
        own = [f for f in files if not any(
            other != name and other.startswith(name + "/")
            and f.is_relative_to(PACKAGE / other) for other in listed)]
        counts[name] = sum(len(f.read_text(encoding="utf-8").splitlines()) for f in own)
    return counts


def test_architecture_md_line_counts_are_current() -> None:
    """The table's line counts stay within 10% of the tree's (``python tests/test_layout.py
    --counts`` prints the current ones)."""
    import re

    doc = (PACKAGE.parents[1] / "ARCHITECTURE.md").read_text(encoding="utf-8")
    rows = {m.group(1).rstrip("/"): int(m.group(2).replace(",", ""))
            for m in re.finditer(r"^\| `([^`]+)` \| ([\d,]+) \|", doc, re.M)}
    actual = _package_lines(set(rows))
    stale = {name: (rows[name], actual[name]) for name in rows
             if abs(rows[name] - actual[name]) > 0.10 * actual[name]}
    assert not stale, f"ARCHITECTURE.md line counts (listed, actual): {stale}"


if __name__ == "__main__":  # the import graph, as JSON (see _import_graph)
    import sys

    if sys.argv[1:] == ["--counts"]:  # the current line counts of ARCHITECTURE.md's rows
        import re

        doc = (PACKAGE.parents[1] / "ARCHITECTURE.md").read_text(encoding="utf-8")
        names = {m.rstrip("/") for m in re.findall(r"^\| `([^`]+)` \|", doc, re.M)}
        print(json.dumps(dict(sorted(_package_lines(names).items()))))
    else:
        print(json.dumps({k: sorted(v) for k, v in _build_graph().items()}))
