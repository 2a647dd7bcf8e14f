"""What a code check costs a cascade step: run one answer's code against another answer's
asserts in the sandboxed child, on real MBPP answers, beside a bare interpreter start.

    python bench/code_check.py [--data routerbench] [--n 60] [--writer M] [--coder M]

One ``CodeChecker`` serves every check, as in ``router train/eval --code-checks`` (its
isolation probe is made once, before timing); no pair repeats, so nothing is answered from
its memory.
Prints a JSON object as the last line: latency percentiles of both, their ratio, and how
often the coder's code passed the writer's tests."""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

import numpy as np

from _harness import percentiles
from kanjia.lab import CodeChecker, load_dataset
from kanjia.lab._codecheck import extract_tests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="routerbench")
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--writer", default="meta/code-llama-instruct-34b-chat")
    parser.add_argument("--coder", default="gpt-3.5-turbo-1106")
    args = parser.parse_args()

    data = load_dataset(args.data).test()
    rows = data.subset(data.task_mask("mbpp"))
    w, c = rows.models.index(args.writer), rows.models.index(args.coder)
    pairs = [(r[c], r[w]) for r in rows.responses if extract_tests(r[w])][: args.n]

    checker = CodeChecker()
    checker.ensure_available()  # the one-off isolation probe, outside the timings
    bare: list[float] = []
    check: list[float] = []
    passed = 0
    for coder, writer in pairs:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True, env={})
        bare.append((time.perf_counter() - t0) * 1000.0)
        t0 = time.perf_counter()
        score = checker.scores([coder, writer])[0]
        check.append((time.perf_counter() - t0) * 1000.0)
        passed += score == 1.0
    report = {
        "bench": "code_check",
        "machine": platform.machine(),
        "python": platform.python_version(),
        "pairs": len(pairs),
        "writer": args.writer,
        "coder": args.coder,
        "check_ms": percentiles(check),
        "bare_interpreter_ms": percentiles(bare),
        "p50_ratio_check_to_bare": float(np.median(check) / np.median(bare)),
        "share_passing_all": passed / max(len(pairs), 1),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
