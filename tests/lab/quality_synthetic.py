"""Small synthetic data in the RouterBench and RouteLLM layouts, made inside the tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

MODELS = ("tiny-model", "mid-model", "big-model")
COSTS = {"tiny-model": 0.0001, "mid-model": 0.0005, "big-model": 0.005}
TOPICS = ("cats", "taxes", "rockets", "poems", "soup", "chess")


def make_routerbench(root: Path, n: int = 240, seed: int = 0) -> Path:
    """Two tasks; ``hard`` prompts defeat the tiny model; the mid model is right when it agrees
    with the tiny one. Answers are choice letters, as in RouterBench."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for task in ("quiz", "riddle"):
        for split, count in (("train", n), ("test", n // 2)):
            rows = []
            for i in range(count):
                hard = rng.random() < 0.4
                truth = "AB"[int(rng.integers(0, 2))]
                topic = TOPICS[int(rng.integers(0, len(TOPICS)))]
                word = "difficult tricky" if hard else "simple easy"
                prompt = f"['Question {i} about {topic}: a {word} one.\\nA) yes\\nB) no\\nAnswer:']"
                p_right = {
                    "tiny-model": 0.3 if hard else 0.9,
                    "mid-model": 0.55 if hard else 0.95,
                    "big-model": 0.95,
                }
                row: dict[str, object] = {
                    "sample_id": f"{task}.{split}.{i}",
                    "prompt": prompt,
                    "eval_name": task,
                }
                for m in MODELS:
                    ok = rng.random() < p_right[m]
                    answer = truth if ok else ("B" if truth == "A" else "A")
                    row[m] = float(ok)
                    row[m + "|total_cost"] = COSTS[m] * (1.0 + 0.1 * rng.random())
                    row[m + "|model_response"] = repr([answer + "\n"])
                rows.append(row)
            pd.DataFrame(rows).to_csv(root / f"{task}_{split}.csv", index=False)
    return root


def make_routellm(root: Path, n: int = 400, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    weak, strong = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
    rows = []
    for i in range(n):
        hard = rng.random() < 0.5
        topic = TOPICS[i % len(TOPICS)]
        prompt = f"Q{i}: {'prove the hard theorem' if hard else 'name the easy fact'} on {topic}?"
        rows.append(
            {
                "prompt": prompt,
                weak: bool(rng.random() < (0.35 if hard else 0.9)),
                strong: bool(rng.random() < (0.8 if hard else 0.95)),
                "subject": topic,
            }
        )
    frame = pd.DataFrame(rows)
    frame.to_parquet(root / "quiz_gpt4_vs_mixtral.parquet")
    contaminated = [
        {"train_prompt": "x", "eval_prompt": p, "train_idx": 0, "eval_idx": 0}
        for p in frame["prompt"][:40]
    ]
    (root / "quiz_contaminated_prompts.jsonl").write_text(
        "\n".join(json.dumps(c) for c in contaminated) + "\n"
    )
    return root


CODERS = ("tester", "coder", "expert")
CODER_COSTS = {"tester": 0.0001, "coder": 0.0002, "expert": 0.004}


def _answer(body: str, tests: str = "") -> str:
    text = f"Here it is:\n```python\ndef solve(x):\n    {body}\n\nprint(solve(3))\n```\n"
    return text + (f"[TESTS]\n{tests}\n[/TESTS]\n" if tests else "")


def make_codebench(root: Path, n: int = 120, seed: int = 2) -> Path:
    """One code task: ``solve(x)`` must return ``x * k``. The tester writes right asserts
    but wrong code; the coder's code is right 70% of the time; the expert is right 95% of
    the time at 20 times the coder's price. Running the coder's code against the tester's
    asserts tells which coder answers to keep."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n), ("test", n // 2)):
        rows = []
        for i in range(count):
            k = int(rng.integers(2, 9))
            tests = "\n".join(f"assert solve({x}) == {x * k}" for x in (1, 2, 5))
            right = {"tester": False, "coder": rng.random() < 0.7, "expert": rng.random() < 0.95}
            row: dict[str, object] = {
                "sample_id": f"code.{split}.{i}",
                "prompt": repr([f"Write a function that multiplies a number by {k}."]),
                "eval_name": "code",
            }
            for m in CODERS:
                body = f"return x * {k}" if right[m] else f"return x + {k}"
                row[m] = float(right[m])
                row[m + "|total_cost"] = CODER_COSTS[m]
                row[m + "|model_response"] = repr([_answer(body, tests if m == "tester" else "")])
            rows.append(row)
        pd.DataFrame(rows).to_csv(root / f"code_{split}.csv", index=False)
    return root
