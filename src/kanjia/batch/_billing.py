"""A batch line's ledger row, priced as it was sent (the vendor's batch price for a line
that went through its batch API), and giving back a budget hold unused."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kanjia.access import AccessPolicy, Principal, Reservation
from kanjia.catalog import Usage, cost_of
from kanjia.ledger.record import CallRecord
from kanjia.routing.directory import Target
from kanjia.vendors import Deployment

if TYPE_CHECKING:
    from kanjia.server.app import Services

__all__ = ["line_record", "release"]


def line_record(s: Services, principal: Principal, body: dict[str, Any], target: Target,
                dep: Deployment, usage: Usage | None, ts: float, t0: float | None, *,
                batch: bool, rid: str, route: str | None,
                output_text: str = "") -> CallRecord:
    """Build, price and emit (metrics, ledger sinks) the row of one finished line.
    Usage is the vendor's; without it the tokens are counted and marked as an estimate."""
    estimated = usage is None
    if usage is None:
        counter = s.gateway.counter
        if "messages" in body:
            prompt = counter.count_prompt_tokens(target.vendor, target.model,
                                                 body.get("messages") or [])
        else:
            inp = body.get("input")
            texts = [inp] if isinstance(inp, str) else [t for t in inp or ()
                                                          if isinstance(t, str)]
            prompt = sum(counter.count_text_tokens(target.vendor, target.model, t)
                         for t in texts)
        out = counter.count_text_tokens(target.vendor, target.model, output_text) \
            if output_text else 0
        usage = Usage(prompt, 0, 0, out)
    rec = CallRecord(
        request_id=rid, ts=ts, endpoint="batch", route=route,
        requested_model=str(body.get("model")), vendor=target.vendor, model=target.model,
        deployment=dep.name, tenant=principal.tenant, key_id=principal.key_id,
        input_tokens=usage.input_tokens, cached_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens, output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens, usage_estimated=estimated,
        reporting_currency=s.gateway.reporting_currency,
        latency_ms=(time.perf_counter() - t0) * 1000 if t0 is not None else 0.0,
        attempts=[target.key])
    if target.entry is not None:
        at = datetime.fromtimestamp(ts, UTC)
        cost = cost_of(usage, target.entry, at, batch=batch)
        rec.cost, rec.currency, rec.price_period = cost.amount, cost.currency, cost.period_id
        rec.cost_reporting = s.catalog.fx.convert(cost.amount, cost.currency,
                                                  rec.reporting_currency, at.date())
    else:
        rec.currency, rec.price_period = rec.reporting_currency, "unpriced"
    s.metrics.observe(rec, None)
    for sink in s.gateway.sinks:
        sink(rec)
    return rec


def release(access: AccessPolicy, hold: Reservation | None, bid: str,
            ts: float | None = None) -> None:
    """Give a hold back unused: settle it with a record of nothing spent (at ``ts``,
    default now)."""
    if hold is None:
        return
    rec = CallRecord(request_id="release-" + bid, ts=time.time() if ts is None else ts,
                     endpoint="batch", route=None, requested_model="",
                     key_id=hold.principal.key_id, tenant=hold.principal.tenant,
                     cost=Decimal(0), currency=hold.currency, charge=Decimal(0), status=499)
    access.settle(hold, rec)
