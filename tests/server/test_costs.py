"""``usage.cost`` written into replies: a large body's usage object is edited in place
(no re-serialising megabytes of embeddings on the event loop) with the same result as
parsing and writing the whole body."""

from __future__ import annotations

import json
import random
import time
from decimal import Decimal

import orjson
import pytest

from kanjia.catalog import Usage
from kanjia.server._costs import add_cost, chunk_with_cost

rng = random.Random(7)


def _embeddings(n: int, usage: object | None, indent: bool = False) -> bytes:
    body: dict[str, object] = {"object": "list", "model": "usage", "data": [
        {"object": "embedding", "index": i, "embedding": [rng.random() for _ in range(256)]}
        for i in range(n)]}
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body, indent=2).encode() if indent else orjson.dumps(body)


@pytest.mark.parametrize("indent", [False, True])
@pytest.mark.parametrize("usage", [
    {"prompt_tokens": 12, "total_tokens": 12},
    {"prompt_tokens": 12, "total_tokens": 12,
     "prompt_tokens_details": {"cached_tokens": 4, "note": "a } and a \" quote"}},
    None,
])
def test_large_bodies_get_the_same_usage_as_a_full_parse(usage: object, indent: bool) -> None:
    body = _embeddings(60, usage, indent)
    assert len(body) > 64 * 1024
    got = orjson.loads(add_cost(body, Decimal("0.000123456789"), "CNY",
                                usage=Usage(12, 0, 0, 0, 0), endpoint="embeddings",
                                estimated=usage is None))
    want = orjson.loads(body)
    want.setdefault("usage", {"prompt_tokens": 12, "total_tokens": 12, "estimated": True})
    want["usage"].update(cost=0.000123457, cost_currency="CNY")
    assert got == want


def test_a_usage_string_is_not_taken_for_the_usage_object() -> None:
    body = orjson.dumps({"data": ["x" * 70_000], "model": "usage"})
    got = orjson.loads(add_cost(body, Decimal(1), "USD", usage=Usage(3, 0, 0, 0, 0),
                                endpoint="embeddings"))
    assert got["model"] == "usage" and got["usage"]["cost"] == 1.0


def test_unpriced_is_null_not_zero() -> None:
    body = orjson.dumps({"choices": [], "usage": {"prompt_tokens": 1}})
    assert orjson.loads(add_cost(body, None, "CNY"))["usage"]["cost"] is None
    chunk = orjson.dumps({"choices": [], "usage": None})
    assert chunk_with_cost(chunk, (Decimal(1), "CNY", "p")) == chunk  # "usage": null


def test_large_body_cost_is_cheap() -> None:
    """A 2.6 MB embeddings reply: the in-place edit against a full parse (printed)."""
    body = _embeddings(500, {"prompt_tokens": 12, "total_tokens": 12})
    t0 = time.perf_counter()
    add_cost(body, Decimal(1), "CNY")
    spliced = time.perf_counter() - t0
    t0 = time.perf_counter()
    obj = orjson.loads(body)
    obj["usage"]["cost"] = 1.0
    orjson.dumps(obj)
    full = time.perf_counter() - t0
    print(f"usage.cost on {len(body) / 1e6:.1f} MB: {spliced * 1000:.2f} ms in place, "
          f"{full * 1000:.2f} ms by a full parse")
    assert spliced < full
