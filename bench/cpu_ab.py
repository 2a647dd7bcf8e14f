"""Gateway CPU per request, before and after: a git revision's gateway beside the working
tree's, both up at once on the same core, the load moving between them.

For each cell (chat, Messages and Responses; streamed and not) and round: the direct call
at one connection, then each gateway (in an order that flips every round) at 64
connections (its CPU per request: user + system time of the gateway process from /proc,
over the requests wrk completed) and at one connection (its p50 minus the direct p50).
Medians over the rounds; ``cpu_ratio`` is after / before. On a busy machine the CPU per
request is the figure that holds still; the latencies measure the machine.

Run: python bench/cpu_ab.py --before REV [--seconds 2] [--rounds 3] [--metering]
     [--cells stream,messages_stream,...]
Pinning (on 2+ cores): both gateways on cpu1; sandbox and wrk on cpu0. Last line: one JSON
object.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _harness import CHAT_BODY, emit, free_port, load, process, sandbox
from overhead import API_BODIES

CELLS = ("chat", "stream", "messages", "messages_stream", "responses", "responses_stream")


def _body(cell: str) -> tuple[str, dict[str, object]]:
    streamed = cell == "stream" or cell.endswith("_stream")
    api = "chat" if cell in ("chat", "stream") else cell.removesuffix("_stream")
    path, body = ("/v1/chat/completions", dict(CHAT_BODY)) if api == "chat" \
        else API_BODIES[api]
    if streamed:
        body = {**body, "stream": True}
        if api == "chat":
            body["stream_options"] = {"include_usage": True}
    return path, body


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(rev: str, into: Path) -> Path:
    """The ``src`` of ``rev``, exported (no worktree, no checkout)."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", rev, "src"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="git revision to compare against")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--metering", action="store_true",
                    help="both gateways with the SQLite ledger and a key with 2 budgets, "
                         "rpm and tpm")
    ap.add_argument("--cells", default=",".join(CELLS))
    args = ap.parse_args()
    cells = [c for c in args.cells.split(",") if c]
    here = Path(__file__).resolve().parent.parent / "src"
    res: dict[str, dict[str, dict[str, list[float]]]] = {
        k: {c: {"cpu_us": [], "added_p50_ms_c1": []} for c in cells}
        for k in ("before", "after")}
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, sandbox(core=0) as sb, \
            contextlib.ExitStack() as stack:
        trees = {"before": _tree(args.before, Path(tmp)), "after": here}
        gws: dict[str, tuple[str, int, str]] = {}
        for name, src in trees.items():
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            extra: list[str] = []
            env = {"PYTHONPATH": str(src)}
            if args.metering:
                from ledger import MASTER
                extra = ["--db", f"{tmp}/{name}.db"]
                env |= {"KANJIA_MASTER_KEY": MASTER, "KANJIA_JOURNAL_DIR": f"{tmp}/j-{name}"}
            proc = stack.enter_context(process(
                [sys.executable, "-m", "kanjia", "serve", "--sandbox", sb, "--port",
                 str(port), *extra], f"{url}/healthz", 1, env))
            key = "bench"
            if args.metering:
                from ledger import _make_key
                key = _make_key(url)
            gws[name] = (url, proc.pid, key)
        for cell in cells:  # warm-up
            path, body = _body(cell)
            for url, _, key in gws.values():
                load(url + path, body, 8, 1, api_key=key)
        direct = f"{sb}/openai/chat/completions"
        for r in range(args.rounds):
            for cell in cells:
                path, body = _body(cell)
                d = load(direct, _body("stream" if cell.endswith("stream") else "chat")[1],
                         1, args.seconds, api_key="sandbox-key")
                order = list(gws.items()) if r % 2 == 0 else list(reversed(gws.items()))
                for name, (url, pid, key) in order:
                    c0 = _cpu_s(pid)
                    heavy = load(url + path, body, 64, args.seconds, api_key=key)
                    cpu = _cpu_s(pid) - c0
                    res[name][cell]["cpu_us"].append(cpu / max(1, heavy.requests) * 1e6)
                    one = load(url + path, body, 1, args.seconds, api_key=key)
                    res[name][cell]["added_p50_ms_c1"].append(one.p50_ms - d.p50_ms)
    out: dict[str, object] = {"before": args.before, "metering": args.metering,
                              "rounds": args.rounds, "seconds": args.seconds,
                              "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)]}
    for cell in cells:
        row: dict[str, object] = {
            name: {k: round(statistics.median(v), 3) for k, v in res[name][cell].items()}
            for name in res}
        ratio = statistics.median(res["after"][cell]["cpu_us"]) / \
            statistics.median(res["before"][cell]["cpu_us"])
        row["cpu_ratio"] = round(ratio, 3)
        out[cell] = row
    emit(out)


if __name__ == "__main__":
    main()
