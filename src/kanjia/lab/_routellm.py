"""Reader for the RouteLLM layout: two-model outcome tables (``*.parquet`` / ``*.csv`` with a
``prompt`` column, one 0/1 column per model and optional ``<model>_response`` columns),
MT-Bench judgements (``*_judgements.jsonl`` + ``*_question.jsonl``) and
``*_contaminated_prompts.jsonl`` (prompts left out of the test split, as RouteLLM does).

The data records text, not money: costs are token counts times list prices (``_prices``).
The test split is a fixed hash of the prompt (``TEST_FRACTION`` of it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from kanjia.lab._dataset import Dataset
from kanjia.lab._prices import ASSUMED_OUTPUT_TOKENS, TOKENIZER, price_of
from kanjia.lab._split import hash_split
from kanjia.lab._tokens import count_tokens

TEST_FRACTION = 0.3
RESPONSE_SUFFIX = "_response"
_NOT_MODELS = {"prompt", "subject", "category", "question_id", "id", "sample_id"}
COST_SOURCE = (
    f"token counts ({TOKENIZER}) x list prices in kanjia.routing.quality._prices; "
    f"{ASSUMED_OUTPUT_TOKENS} output token assumed where the data has no answer text"
)


def task_of(path: Path) -> str:
    """``mmlu_gpt4_vs_mixtral.parquet`` -> ``mmlu``; ``mt_bench_judgements`` -> ``mt_bench``."""
    stem = path.stem
    for suffix in ("_judgements", "_question", "_contaminated_prompts", "_responses"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem.split("_")[0]


def contaminated_prompts(directory: Path) -> set[str]:
    found: set[str] = set()
    for path in sorted(directory.glob("*_contaminated_prompts.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                prompt = json.loads(line).get("eval_prompt")
                if isinstance(prompt, str):
                    found.add(prompt)
    return found


def _model_columns(frame: pd.DataFrame) -> list[str]:
    models = []
    for column in frame.columns:
        name = str(column)
        if name in _NOT_MODELS or name.endswith(RESPONSE_SUFFIX):
            continue
        values = frame[column].dropna()
        if values.dtype == bool or (
            pd.api.types.is_numeric_dtype(values) and values.isin([0, 1]).all()
        ):
            models.append(name)
    return models


def read_table(path: Path) -> tuple[str, pd.DataFrame, list[str]]:
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if "prompt" not in frame.columns:
        raise ValueError(f"{path.name}: no prompt column")
    return task_of(path), frame, _model_columns(frame)


def _assistant_answers(user_prompt: str) -> list[str]:
    """The assistant turns quoted in an MT-Bench judge prompt (single- or multi-turn)."""
    single = re.search(
        r"\[The Start of Assistant's Answer\]\s*(.*?)\s*\[The End of Assistant's Answer\]",
        user_prompt,
        flags=re.S,
    )
    if single:
        return [single.group(1)]
    pattern = r"### Assistant A:\s*(.*?)(?=\n\n### User:|<\|The End of Assistant A|\Z)"
    return [m.strip() for m in re.findall(pattern, user_prompt, flags=re.S)]


def read_mt_bench(judgements: Path) -> tuple[str, pd.DataFrame, list[str]]:
    """One row per (question, turn); the score is the judge's 1-10 rating / 10."""
    task = task_of(judgements)
    questions_path = judgements.with_name(f"{task}_question.jsonl")
    turns: dict[int, list[str]] = {}
    for line in questions_path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            turns[int(q["question_id"])] = [str(t) for t in q["turns"]]
    rows: dict[tuple[int, int], dict[str, object]] = {}
    models: list[str] = []
    for line in judgements.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        j = json.loads(line)
        qid, turn, model = int(j["question_id"]), int(j["turn"]), str(j["model"])
        if model not in models:
            models.append(model)
        row = rows.setdefault((qid, turn), {"prompt": "\n\n".join(turns[qid][:turn])})
        row[model] = max(0.0, min(1.0, float(j["score"]) / 10.0))
        answers = _assistant_answers(str(j.get("user_prompt", "")))
        index = 0 if len(answers) == 1 else turn - 1
        row[model + RESPONSE_SUFFIX] = answers[index] if len(answers) > index else None
    frame = pd.DataFrame(list(rows.values()))
    return task, frame.dropna(subset=models).reset_index(drop=True), models


def read_routellm(directory: Path, tables: list[Path], judgements: list[Path]) -> Dataset:
    loaded = [read_table(p) for p in sorted(tables)] + [read_mt_bench(p) for p in judgements]
    if not loaded:
        raise ValueError(f"{directory}: no RouteLLM-format files")
    models = tuple(loaded[0][2])
    for task, _, cols in loaded:
        if set(cols) != set(models):
            raise ValueError(f"{task}: models {cols} differ from {list(models)}")
    exclude = contaminated_prompts(directory)
    parts = [_to_dataset(task, frame, models, exclude) for task, frame, _ in loaded]
    return Dataset.concat(parts)


def _to_dataset(
    task: str, frame: pd.DataFrame, models: tuple[str, ...], exclude: set[str]
) -> Dataset:
    frame = frame.dropna(subset=list(models)).reset_index(drop=True)
    prompts = tuple(str(p) for p in frame["prompt"])
    is_test = hash_split(prompts, TEST_FRACTION)
    keep = ~(is_test & np.array([p in exclude for p in prompts], dtype=bool))
    prices = [price_of(m) for m in models]
    input_tokens = [count_tokens(p) for p in prompts]
    responses: list[tuple[str | None, ...]] = []
    cost = np.zeros((len(frame), len(models)))
    for j, model in enumerate(models):
        column = frame.get(model + RESPONSE_SUFFIX)
        texts = (
            [t if isinstance(t, str) else None for t in column]
            if column is not None
            else [None] * len(frame)
        )
        for i, text in enumerate(texts):
            out = count_tokens(text) if text is not None else ASSUMED_OUTPUT_TOKENS
            cost[i, j] = prices[j].cost(input_tokens[i], out)
        responses.append(tuple(texts))
    data = Dataset(
        prompts=prompts,
        tasks=(task,) * len(frame),
        models=models,
        quality=frame[list(models)].to_numpy(dtype=np.float64),
        cost=cost,
        responses=tuple(zip(*responses, strict=True)) if len(frame) else (),
        is_test=is_test,
        currency="USD",
        cost_source=COST_SOURCE,
    )
    return data.subset(keep)
