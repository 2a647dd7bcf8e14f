"""Instructions per request of each step of the keyed path, counted by callgrind.

Run: python bench/keyed_path.py [--iterations 2000] [--baseline TREE]

A gateway app is built in this process (``--db`` SQLite ledger, a virtual key with two
budgets, rpm and tpm, as in bench/ledger.py's "on" configuration), warmed up, and then
each step runs ``--iterations`` times under ``valgrind --tool=callgrind`` with the
instrumentation switched on only around that step's loop. Instruction counts do not
depend on what else the machine is doing, so before and after can be told apart on a
noisy machine where the time per request moves by ±30% (``--baseline TREE``: the same
steps served by another source tree, e.g. an export of an earlier commit).

Steps, per request: ``authenticate`` (the key); ``worst_cases`` (the input-token bound
and the most the request can cost); ``reserve_settle`` (reserve the worst case against
two budgets and the rate limits, then settle the call's real charge); ``ledger_record``
(the usage row: its journal line written with one ``os.write``). No vendor is called.

Needs valgrind (``apt-get install valgrind``). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STEPS = ("authenticate", "worst_cases", "reserve_settle", "ledger_record")
MASTER = "sk-master-bench"
BODY: dict[str, Any] = {
    "model": "openai/gpt-4o-mini", "max_tokens": 40,
    "messages": [
        {"role": "system", "content": "You are a helpful assistant for procurement teams. " * 8},
        {"role": "user", "content": "Compare the price per million tokens of three vendors "
         "and recommend one for a customer-service bot. " * 6}]}


async def _asgi(app: Any, path: str, body: bytes, key: str) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError

    async def send(msg: dict[str, Any]) -> None:
        sent.append(msg)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 2), "state": {},
             "headers": [(b"content-type", b"application/json"),
                         (b"authorization", b"Bearer " + key.encode())]}
    await app(scope, receive, send)
    return int(sent[0]["status"]), b"".join(m.get("body", b"") for m in sent[1:])


async def _child(steps: list[str], n: int, sync: Path) -> None:
    import orjson

    from kanjia.config import load_settings
    from kanjia.ledger.record import CallRecord
    from kanjia.server.wiring import build_app

    tmp = Path(tempfile.mkdtemp())
    env = {"KANJIA_MASTER_KEY": MASTER, "KANJIA_JOURNAL_DIR": str(tmp / "journal")}
    settings = load_settings(None, sandbox_url="http://127.0.0.1:9", database=str(tmp / "g.db"),
                             ledger_writer="thread")
    app = build_app(settings, env=env)
    await app.startup()
    status, raw = await _asgi(app, "/admin/keys", json.dumps({
        "name": "bench", "budget": ["1000000CNY/month", "100000CNY/day"],
        "rpm": 10_000_000, "tpm": 2_000_000_000}).encode(), MASTER)
    assert status in (200, 201), raw
    key = json.loads(raw)["key"]
    s = app.services
    gw, access = s.gateway, s.access
    model = BODY["model"]
    bodies = iter([orjson.loads(orjson.dumps(BODY)) for _ in range(2 * n + 200)])
    principal = await access.authenticate(key, model)
    plan = gw.admission.narrow(gw.planner.plan(model, BODY, "chat", None), BODY, "chat",
                               principal, access)
    case = (await gw.admission.worst_cases(BODY, "chat", plan.targets))[0]
    ledger = s.metering.ledger if s.metering is not None else None
    assert ledger is not None
    rec = CallRecord(request_id="r", ts=time.time(), endpoint="chat", route=None,
                     requested_model=model, vendor="openai", model="gpt-4o-mini",
                     deployment="default", key_id=principal.key_id, input_tokens=812,
                     cached_tokens=128, output_tokens=40, currency="USD",
                     reporting_currency="USD", attempts=["openai/gpt-4o-mini@default"])

    async def authenticate() -> None:
        await access.authenticate(key, model)

    async def worst_cases() -> None:
        await gw.admission.worst_cases(next(bodies), "chat", plan.targets)

    async def reserve_settle() -> None:
        held = await access.reserve(principal, case.model_key, case.amount, case.currency,
                                    case.tokens)
        rec.charge = None
        access.settle(held, rec)

    async def ledger_record() -> None:
        ledger.record(rec)

    fns = {"authenticate": authenticate, "worst_cases": worst_cases,
           "reserve_settle": reserve_settle, "ledger_record": ledger_record}
    for step in steps:
        for _ in range(100):
            await fns[step]()
        (sync / f"ready-{step}").touch()
        while not (sync / f"go-{step}").exists():
            time.sleep(0.02)
        for _ in range(n):
            await fns[step]()
        (sync / f"done-{step}").touch()
        while not (sync / f"next-{step}").exists():
            time.sleep(0.02)
    await app.shutdown()


def _wait(path: Path, proc: subprocess.Popen[bytes], timeout: float = 900.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise SystemExit(f"the measured process stopped ({proc.returncode})")
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {path.name}")
        time.sleep(0.05)


def _measure(tree: Path | None, steps: list[str], n: int) -> dict[str, int]:
    """Instructions per iteration of each step, served by ``tree`` (None: this one)."""
    with tempfile.TemporaryDirectory() as d:
        sync = Path(d)
        out = sync / "cg.out"
        env = dict(os.environ)
        if tree is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), env.get("PYTHONPATH", "")])
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out}", sys.executable, __file__, "--child",
             ",".join(steps), "--iterations", str(n), "--sync", str(sync)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        counts: dict[str, int] = {}
        try:
            for i, step in enumerate(steps, start=1):
                _wait(sync / f"ready-{step}", proc)
                subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)],
                               check=True, capture_output=True)
                (sync / f"go-{step}").touch()
                _wait(sync / f"done-{step}", proc)
                subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)],
                               check=True, capture_output=True)
                subprocess.run(["callgrind_control", "-d", str(proc.pid)],
                               check=True, capture_output=True)
                dump = Path(f"{out}.{i}")
                _wait(dump, proc, 60)
                time.sleep(0.2)  # (the dump is written by the measured process)
                totals = [int(line.split()[1]) for line in dump.read_text().splitlines()
                          if line.startswith(("totals:", "summary:"))]
                counts[step] = round(max(totals) / n)
                (sync / f"next-{step}").touch()
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
        return counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--baseline", default=None, help="also count the steps served by TREE/src")
    ap.add_argument("--steps", default=",".join(STEPS))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--sync", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    steps = [s for s in args.steps.split(",") if s]
    if args.child is not None:
        asyncio.run(_child(args.child.split(","), args.iterations, Path(args.sync)))
        return
    if not shutil.which("valgrind"):
        raise SystemExit("keyed_path.py needs valgrind: apt-get install valgrind")
    out: dict[str, Any] = {"iterations": args.iterations,
                           "python": sys.version.split()[0]}
    after = _measure(None, steps, args.iterations)
    out.update({f"instructions_{s}": v for s, v in after.items()})
    out["instructions_keyed_total"] = sum(v for s, v in after.items() if s != "ledger_record")
    if args.baseline:
        before = _measure(Path(args.baseline), steps, args.iterations)
        out.update({f"instructions_{s}_baseline": v for s, v in before.items()})
        out["instructions_keyed_total_baseline"] = sum(
            v for s, v in before.items() if s != "ledger_record")
        for name, v in list(out.items()):
            base = out.get(f"{name}_baseline")
            if name.startswith("instructions_") and not name.endswith("_baseline") and base:
                out[name.replace("instructions_", "ratio_", 1)] = round(v / base, 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
