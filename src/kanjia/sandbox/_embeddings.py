"""Deterministic embedding vectors: a window of a precomputed Gaussian table,
chosen by the text's hash, so equal texts get equal vectors."""

from __future__ import annotations

import array
import base64
import math
import random
import sys

from kanjia.sandbox._tokens import seed_of

__all__ = ["MAX_DIM", "as_base64", "embedding"]

MAX_DIM = 4096


def _table(seed: int) -> tuple[float, ...]:
    rng = random.Random(seed)
    values = [rng.gauss(0.0, 1.0) for _ in range(MAX_DIM)]
    return tuple(values * 2)


_TABLE = _table(0x656D62)


def embedding(text: str, dim: int) -> list[float]:
    """A unit-length vector of ``dim`` floats (``dim`` clamped to 1..MAX_DIM)."""
    dim = max(1, min(dim, MAX_DIM))
    start = seed_of(text) % MAX_DIM
    window = _TABLE[start : start + dim]
    scale = 1.0 / (math.sqrt(sum(v * v for v in window)) or 1.0)
    return [round(v * scale, 6) for v in window]


def as_base64(vector: list[float]) -> str:
    """The vector as OpenAI's ``encoding_format: "base64"`` (little-endian float32)."""
    packed = array.array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()
