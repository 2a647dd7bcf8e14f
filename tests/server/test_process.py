"""What a gateway process sets up for itself: request ids that sort by time, and a
garbage collector tuned once start-up is over."""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Iterator

import pytest

from kanjia.server._gc import tune_gc
from kanjia.server._ids import RequestIds


def test_request_ids_sort_by_arrival_and_do_not_collide() -> None:
    ids = RequestIds()
    t0 = time.time()
    # 10 µs apart (a float near 1.8e9 s resolves about 0.24 µs): in order
    made = [ids.new(t0 + i * 1e-5) for i in range(20_000)]
    assert all(re.fullmatch(r"req-[0-9a-f]{24}", rid) for rid in made)
    assert made == sorted(made)
    same = [ids.new(t0) for _ in range(20_000)]  # the same microsecond: the random part
    assert len(set(same)) == len(same)
    assert ids.new(t0 + 1) > ids.new(t0)
    assert RequestIds().new(t0) != RequestIds().new(t0)


@pytest.fixture()
def collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_tune_gc_freezes_what_is_loaded_and_raises_the_young_threshold(
        collector: None) -> None:
    gc.set_threshold(700, 10, 10)
    loaded = [{"n": i} for i in range(1000)]
    tune_gc(10_000)
    assert gc.get_threshold() == (10_000, 10, 10)
    assert gc.get_freeze_count() >= len(loaded)


def test_tune_gc_zero_leaves_the_collector_alone(collector: None) -> None:
    gc.set_threshold(700, 10, 10)
    frozen = gc.get_freeze_count()
    tune_gc(0)
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == frozen


def test_a_cycle_made_after_tuning_is_still_collected(collector: None) -> None:
    import weakref

    tune_gc(10_000)

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    ref = weakref.ref(a)
    del a, b
    gc.collect()
    assert ref() is None
