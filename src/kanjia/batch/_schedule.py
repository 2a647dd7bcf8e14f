"""Decide when deferrable work should go: plan it now, find the cheapest moment ahead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kanjia.routing.defer import SendTime, cheapest_send_time
from kanjia.routing.planner import Planner
from kanjia.tokens import choices, output_limit

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
    out = (output_limit(body) or 256) * choices(body)
    return Schedule(target.key, plan.route,
                    cheapest_send_time(target.entry, plan.prompt_tokens, out, now))
