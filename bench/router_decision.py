"""Decision latency of the quality router, in process, on real prompts.

    python bench/router_decision.py --router rb.npz --data routerbench [--n 2000]

Times ``QualityRouter.choose`` (prompt features + prediction + rule) and one cascade step
(``CascadeRun.observe``) per prompt; prints a JSON object as the last line."""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from _harness import percentiles
from kanjia.lab import load_dataset
from kanjia.routing.quality import QualityRouter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--router", required=True)
    parser.add_argument("--data", default="routerbench")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--weight", type=float, default=0.9)
    args = parser.parse_args()

    start = time.perf_counter()
    router = QualityRouter.load(args.router)
    load_ms = (time.perf_counter() - start) * 1000.0
    data = load_dataset(args.data).test()
    rows = [i % len(data) for i in range(args.n)]
    for i in rows[:50]:  # warm-up
        router.predict(data.prompts[i], data.tasks[i])

    choose_ms, step_ms, prompt_chars = [], [], []
    for i in rows:
        prompt, task = data.prompts[i], data.tasks[i]
        candidates = list(zip(router.models, router.costs_for(task).tolist(), strict=True))
        t0 = time.perf_counter()
        router.choose(prompt, candidates, 0.8, task)
        choose_ms.append((time.perf_counter() - t0) * 1000.0)
        prompt_chars.append(len(prompt))
        run = router.start(prompt, task, args.weight)
        while (model := run.next_model()) is not None:
            answer = data.responses[i][data.models.index(model)]
            t0 = time.perf_counter()
            run.observe(model, answer)
            step_ms.append((time.perf_counter() - t0) * 1000.0)

    print(
        json.dumps(
            {
                "bench": "router_decision",
                "router": args.router,
                "data": args.data,
                "models": len(router.models),
                "prompt_chars_p50": float(np.median(prompt_chars)),
                "load_ms": load_ms,
                "decision_ms": percentiles(choose_ms),
                "cascade_step_ms": percentiles(step_ms) if step_ms else None,
                "python": platform.python_version(),
                "machine": platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
