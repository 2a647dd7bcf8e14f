from __future__ import annotations

import numpy as np
import pytest

from kanjia.routing.quality import CascadePolicy, CascadeRun, QualityRouter
from kanjia.routing.quality._answers import answer_key
from kanjia.routing.quality._cascade import feature_dim
from kanjia.routing.quality._logistic import LinearHeads


def _policy(thresholds: tuple[float, ...] = (0.8,)) -> CascadePolicy:
    keys = ("A", "B")
    steps = []
    for i in range(2):
        dim = feature_dim(i + 1, len(keys))
        w = np.zeros((dim, i + 1))
        if i == 1:
            w[-2, :] = 6.0  # the two answers agree -> both look right
        steps.append(LinearHeads(w, np.zeros(i + 1)))
    return CascadePolicy(("cheap", "strong"), thresholds, tuple(steps), keys)


def test_cascade_stops_early_when_the_cheap_answer_is_trusted() -> None:
    run = CascadeRun(_policy((0.4,)), [0.0, 0.0])
    assert run.next_model() == "cheap"
    run.observe("cheap", "A")
    assert run.next_model() is None and run.answer() == "cheap"


def test_cascade_escalates_and_bills_every_call() -> None:
    run = CascadeRun(_policy((0.8,)), [0.0, 0.0])
    run.observe("cheap", "A")
    assert run.next_model() == "strong"
    run.observe("strong", "A")
    assert run.next_model() is None
    assert run.called == ("cheap", "strong")
    assert run.answer() in ("cheap", "strong")


def test_cascade_refuses_out_of_order_answers() -> None:
    run = CascadeRun(_policy(), [0.0, 0.0])
    with pytest.raises(ValueError):
        run.observe("strong", "A")
    with pytest.raises(RuntimeError):
        run.answer()


def test_answer_keys() -> None:
    assert answer_key("B\n") == "B"
    assert answer_key("A) Kyle") == "A"
    assert answer_key("I do not know") is None
    assert answer_key("so she makes #### 18") == "#18"
    assert answer_key("```python\ndef f(): return 1\n```") is None


def test_plan_uses_cascades_on_data_with_answers(bench_router: QualityRouter) -> None:
    assert any(bench_router.cascades.values())
