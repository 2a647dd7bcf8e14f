"""Decide when deferrable work should go: plan it now, find the cheapest moment ahead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kanjia.routing.defer import SendTime, cheapest_send_time
from kanjia.routing.planner import Planner

__all__ = ["Schedule", "schedule"]


@dataclass(frozen=True, slots=True)
class Schedule:
    target: str
    route: str | None
    when: SendTime | None  # None: the target is unpriced, send now


def schedule(planner: Planner, body: dict[str, Any], now: datetime | None = None) -> Schedule:
    now = now or datetime.now(UTC)
    plan = planner.plan(body["model"], body)
    target = plan.targets[0]
    if target.entry is None:
        return Schedule(target.key, plan.route, None)
    out = int(body.get("max_completion_tokens") or body.get("max_tokens") or 256)
    return Schedule(target.key, plan.route,
                    cheapest_send_time(target.entry, plan.prompt_tokens, out, now))
