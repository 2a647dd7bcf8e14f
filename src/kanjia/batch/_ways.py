"""For one batch line: the cheapest way that meets the deadline — now, an off-peak
window, or the vendor's own batch API — and what a budget must reserve for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from kanjia.catalog import most_cost
from kanjia.routing.defer import cheapest_send_time
from kanjia.routing.directory import Target
from kanjia.routing.planner import Planner
from kanjia.vendors import batch_adapter_for
from kanjia.vendors._batch_openai import OPENAI_STYLE

__all__ = ["VENDOR_WINDOW_S", "Way", "choose_way"]

#: a vendor batch API promises results within 24 hours
VENDOR_WINDOW_S = 24 * 3600
_ORDER = {"now": 0, "offpeak": 1, "vendor_batch": 2}


@dataclass(frozen=True, slots=True)
class Way:
    way: str                        # now | offpeak | vendor_batch
    target: Target
    route: str | None
    send_at: datetime
    #: the most the line can cost this way (what is reserved), in ``currency``
    max_cost: Decimal
    currency: str
    tokens: int


def _supports(target: Target, endpoint: str) -> bool:
    if target.entry is None or target.entry.batch_factor is None:
        return False
    if batch_adapter_for(target.vendor, target.adapter) is None:
        return False
    if target.vendor == "anthropic":
        return endpoint == "/v1/chat/completions"
    return endpoint in OPENAI_STYLE.get(target.vendor, {})


def choose_way(planner: Planner, body: dict[str, Any], endpoint: str, deadline_s: float,
               now: datetime) -> Way:
    """The cheapest way for ``body`` that finishes within ``deadline_s`` of ``now``
    (ties go to the sooner way). Raises the planner's error for an unknown model."""
    kind = "embeddings" if endpoint == "/v1/embeddings" else "chat"
    plan = planner.plan(body["model"], body, kind)
    target = plan.targets[0]
    entry = target.entry
    prompt = plan.prompt_tokens or (_embedding_tokens(body.get("input"))
                                    if kind == "embeddings" else 0)
    out = int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)
    if not out:
        out = 0 if kind == "embeddings" else (
            entry.max_output if entry is not None and entry.max_output else 4096)
    out *= max(1, int(body.get("n") or 1))
    if entry is None:
        return Way("now", target, plan.route, now, Decimal(0), planner.reference_currency,
                   prompt + out)
    cost, currency = most_cost(entry, prompt, out, now)
    options = [Way("now", target, plan.route, now, cost, currency, prompt + out)]
    hours = int(deadline_s // 3600)
    if hours >= 1 and any(p.windows for p in entry.periods):
        when = cheapest_send_time(entry, prompt, out, now, horizon_h=hours)
        if when.deferred and when.at <= now + timedelta(seconds=deadline_s):
            then, cur = most_cost(entry, prompt, out, when.at)
            options.append(Way("offpeak", target, plan.route, when.at, then, cur,
                               prompt + out))
    if deadline_s >= VENDOR_WINDOW_S and _supports(target, endpoint):
        bcost, bcur = most_cost(entry, prompt, out, now, batch=True)
        options.append(Way("vendor_batch", target, plan.route, now, bcost, bcur,
                           prompt + out))
    return min(options, key=lambda w: (w.max_cost, _ORDER[w.way]))


def _embedding_tokens(inp: Any) -> int:
    """A rough count of an embeddings input (the planner counts chat prompts only)."""
    items = [inp] if isinstance(inp, str) else list(inp or ())
    if items and all(isinstance(x, int) for x in items):
        return len(items)  # one list of token ids
    return sum(len(x) // 3 + 1 if isinstance(x, str) else len(x) if isinstance(x, list)
               else 0 for x in items)
