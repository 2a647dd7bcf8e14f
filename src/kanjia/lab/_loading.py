"""Load any directory in the RouterBench or RouteLLM layouts (or both) into one Dataset."""

from __future__ import annotations

import os
from pathlib import Path

from kanjia.lab._dataset import Dataset
from kanjia.lab._routellm import read_routellm
from kanjia.lab._routerbench import is_routerbench_file, read_routerbench

DATA_ENV = "KANJIA_DATA_DIR"


def data_root(cwd: Path | None = None) -> Path:
    """``$KANJIA_DATA_DIR``, else ``../shared/data`` relative to the working directory."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    return (cwd or Path.cwd()) / ".." / "shared" / "data"


def resolve_data_dir(name: str | Path) -> Path:
    """A path as given if it exists, else the same name under :func:`data_root`."""
    path = Path(name)
    if path.is_dir():
        return path
    candidate = data_root() / path
    if candidate.is_dir():
        return candidate
    raise FileNotFoundError(f"no data directory {str(name)!r} (nor under {data_root()})")


def load_dataset(directory: str | Path) -> Dataset:
    root = resolve_data_dir(directory)
    files = sorted(p for p in root.iterdir() if p.is_file())
    bench = [p for p in files if is_routerbench_file(p)]
    tables = [p for p in files if p not in bench and (p.suffix == ".parquet" or p.suffix == ".csv")]
    judgements = [p for p in files if p.name.endswith("_judgements.jsonl")]
    if bench and (tables or judgements):
        raise ValueError(f"{root}: mixes RouterBench and RouteLLM layouts")
    if bench:
        return read_routerbench(bench)
    return read_routellm(root, tables, judgements)
