"""Reader for the RouterBench layout: ``<task>_train.csv`` / ``<task>_test.csv`` with, per
model ``M``, the columns ``M`` (score), ``M|total_cost`` (money paid) and, optionally,
``M|model_response`` (answer text)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

from kanjia.lab._dataset import Dataset

COST_SUFFIX = "|total_cost"
RESPONSE_SUFFIX = "|model_response"


def is_routerbench_file(path: Path) -> bool:
    if path.suffix != ".csv" or not path.stem.endswith(("_train", "_test")):
        return False
    header = pd.read_csv(path, nrows=0).columns
    return any(str(c).endswith(COST_SUFFIX) for c in header)


def models_of(columns: pd.Index) -> tuple[str, ...]:
    return tuple(str(c)[: -len(COST_SUFFIX)] for c in columns if str(c).endswith(COST_SUFFIX))


def clean_response(value: object) -> str | None:
    """Answer text; RouterBench stores it as the repr of a one-element Python list."""
    if not isinstance(value, str):
        return None
    text = value
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            parsed = None
        if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
            text = "\n".join(parsed)
    return text


def read_routerbench(files: list[Path]) -> Dataset:
    parts: list[Dataset] = []
    models: tuple[str, ...] | None = None
    for path in sorted(files):
        frame = pd.read_csv(path)
        file_models = models_of(frame.columns)
        if models is None:
            models = file_models
        elif set(file_models) != set(models):
            raise ValueError(f"{path.name}: models differ from the other files")
        parts.append(_frame_to_dataset(frame, models, path))
    return Dataset.concat(parts)


def _frame_to_dataset(frame: pd.DataFrame, models: tuple[str, ...], path: Path) -> Dataset:
    score_cols = list(models)
    cost_cols = [m + COST_SUFFIX for m in models]
    frame = frame.dropna(subset=score_cols + cost_cols + ["prompt"]).reset_index(drop=True)
    default_task = path.stem.rsplit("_", 1)[0]
    if "eval_name" in frame.columns:
        tasks = tuple(str(t) if isinstance(t, str) else default_task for t in frame["eval_name"])
    else:
        tasks = (default_task,) * len(frame)
    response_cols = [m + RESPONSE_SUFFIX for m in models]
    if all(c in frame.columns for c in response_cols):
        columns = [frame[c].tolist() for c in response_cols]
        responses = tuple(
            tuple(clean_response(col[i]) for col in columns) for i in range(len(frame))
        )
    else:
        responses = tuple((None,) * len(models) for _ in range(len(frame)))
    is_test = np.full(len(frame), path.stem.endswith("_test"), dtype=np.bool_)
    return Dataset(
        prompts=tuple(clean_response(p) or "" for p in frame["prompt"]),
        tasks=tasks,
        models=models,
        quality=np.clip(frame[score_cols].to_numpy(dtype=np.float64), 0.0, 1.0),
        cost=frame[cost_cols].to_numpy(dtype=np.float64),
        responses=responses,
        is_test=is_test,
        currency="USD",
        cost_source="per-call costs recorded in the data (M|total_cost)",
    )
