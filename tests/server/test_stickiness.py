"""Deployment order: weighted, and sticky per end user (``user``) so prompt caches hit."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from kanjia.config import load_settings
from kanjia.server import build_app
from kanjia.vendors import Deployment


def _gateway_and_target(weights: tuple[float, ...]):  # type: ignore[no-untyped-def]
    app = build_app(load_settings(None), env={"DEEPSEEK_API_KEY": "k"})
    gw = app.services.gateway
    target = app.services.directory.resolve("deepseek/deepseek-chat")
    base: Deployment = target.deployments[0]
    deps = tuple(replace(base, name=f"d{i}", weight=w) for i, w in enumerate(weights))
    return gw, replace(target, deployments=deps)


def test_same_user_same_deployment_and_users_spread_by_weight() -> None:
    gw, target = _gateway_and_target((1.0, 1.0, 2.0))
    for user in ("alice", "bob", "碳"):
        firsts = {gw._order(target, user)[0].name for _ in range(20)}
        assert len(firsts) == 1, firsts
    spread = Counter(gw._order(target, f"user-{i}")[0].name for i in range(4000))
    assert abs(spread["d2"] / 4000 - 0.5) < 0.05, spread
    assert abs(spread["d0"] / 4000 - 0.25) < 0.05, spread


def test_without_a_user_the_order_is_a_weighted_shuffle() -> None:
    gw, target = _gateway_and_target((1.0, 3.0))
    firsts = Counter(gw._order(target)[0].name for _ in range(4000))
    assert abs(firsts["d1"] / 4000 - 0.75) < 0.05, firsts
    assert sorted(d.name for d in gw._order(target)) == ["d0", "d1"]
