"""``GET /v1/requests/{request_id}``: what one request cost, from the ledger.

Any client can look up a call after the fact with the id it got in
``x-kanjia-request-id``: tokens by kind, cost (in the vendor's currency and in the
reporting currency), the price period, status, latency and the route decision. Only
the key that made the request (same key id) or the admin key may read it; to any
other key the record does not exist (404, the same answer as an unknown id). Without
a ledger (``kanjia serve`` without ``--db``) there is nothing to look up: 404 saying so.

Records reach the database in batches (every ``KANJIA_LEDGER_FLUSH_S``, 0.1 s). The
lookup reads this process's queue first, so a request it answered is always found, and
a stream's record (made after its last byte) is waited for. A request answered by another
process (``--workers``, or another instance on the same database) is in the database one
flush later: for an id made in the last day that is not found yet, the lookup reads the
database again for up to a few flush intervals before answering 404.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kanjia.errors import BadRequest, ModelNotFound
from kanjia.ledger.record import CallRecord
from kanjia.server import _asgi
from kanjia.server._asgi import Receive, Scope, Send
from kanjia.server._costs import cost_number

if TYPE_CHECKING:
    from kanjia.server.app import KanjiaApp

__all__ = ["PREFIX", "lookup_request", "request_json"]

PREFIX = "/v1/requests/"
#: an id made longer ago than this is not waited for (see the module docstring)
_RECENT_S = 86400.0
#: how many flush intervals a missing recent id is waited for, and the bounds of the wait
_FLUSHES = 10
_WAIT_S = (1.0, 5.0)


class NoSuchRequest(ModelNotFound):
    code = "request_not_found"


def request_json(rec: CallRecord) -> dict[str, Any]:
    """The ledger record of one request, as the endpoint returns it."""
    unpriced = rec.price_period in (None, "unpriced")
    out: dict[str, Any] = {
        "id": rec.request_id, "object": "kanjia.request", "created": int(rec.ts),
        "endpoint": rec.endpoint,
        "status": rec.outcome, "http_status": rec.status, "error_class": rec.error_class,
        "requested_model": rec.requested_model, "route": rec.route,
        "vendor": rec.vendor, "model": rec.model, "deployment": rec.deployment,
        "attempts": list(rec.attempts),
        "usage": {
            "input_tokens": rec.input_tokens, "cached_tokens": rec.cached_tokens,
            "cache_write_tokens": rec.cache_write_tokens, "output_tokens": rec.output_tokens,
            "reasoning_tokens": rec.reasoning_tokens,
        },
        "usage_estimated": rec.usage_estimated,
        "cost": None if unpriced else cost_number(rec.cost),
        "currency": rec.currency,
        "cost_reporting": None if unpriced else cost_number(rec.cost_reporting),
        "reporting_currency": rec.reporting_currency,
        "price_period": rec.price_period or "unpriced",
        "latency_ms": round(rec.latency_ms, 3),
        "ttft_ms": None if rec.ttft_ms is None else round(rec.ttft_ms, 3),
        "stream": rec.stream, "client_disconnected": rec.client_disconnected,
        "key_id": rec.key_id, "tenant": rec.tenant,
    }
    if rec.charge is not None and rec.charge_currency is not None:
        out["charge"] = cost_number(rec.charge)
        out["charge_currency"] = rec.charge_currency
    return out


async def lookup_request(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    if scope["method"] != "GET":
        raise ModelNotFound(f"no such endpoint: {scope['method']} {scope['path']}")
    rid = scope["path"][len(PREFIX):]
    if not rid or "/" in rid or len(rid) > 200:
        raise BadRequest("the request id goes in the path: GET /v1/requests/{request_id}")
    s = app.services
    principal = await s.access.authenticate(app.api_key(scope), "")
    metering = s.metering
    if metering is None:
        raise NoSuchRequest("no ledger is configured (kanjia serve --db ...): request "
                            "records are not kept")
    await s.gateway.settled(rid)
    ledger = metering.ledger
    rec = await ledger.find(rid)
    if rec is None and _recent(rid):  # answered elsewhere, not written yet?
        wait = min(max(_FLUSHES * ledger.interval_s, _WAIT_S[0]), _WAIT_S[1])
        step = min(ledger.interval_s / 2, 0.05)
        deadline = time.monotonic() + wait
        while rec is None and time.monotonic() < deadline:
            await asyncio.sleep(step)
            rec = await ledger.find(rid)
    if rec is None or not (principal.is_admin or rec.key_id == principal.key_id):
        raise NoSuchRequest(f"no request {rid!r} made with this key")
    out = request_json(rec)
    calls = await ledger.find_calls(rid) if "." not in rid else []
    if calls:  # a cascade: every call it made, and what they cost together
        out["calls"] = [request_json(c) for c in [rec, *calls]]
        out["total_cost"], out["total_currency"] = _total([rec, *calls])
    await _asgi.send_json(send, 200, out)


def _total(records: list[CallRecord]) -> tuple[float | None, str]:
    """What the calls cost together: in their currency, or the reporting currency when
    they differ (as ``x-kanjia-cost`` of a cascade reply)."""
    currencies = {r.currency for r in records}
    if len(currencies) == 1:
        return cost_number(sum((r.cost for r in records), Decimal(0))), currencies.pop()
    return (cost_number(sum((r.cost_reporting for r in records), Decimal(0))),
            records[0].reporting_currency)


def _recent(rid: str) -> bool:
    """Is ``rid`` a request id (``req-`` + 13 hex digits of µs since the epoch + 11) made
    in the last day?"""
    if len(rid) != 28 or not rid.startswith("req-"):
        return False
    try:
        made = int(rid[4:17], 16) / 1e6
        int(rid[17:], 16)
    except ValueError:
        return False
    return -60.0 < time.time() - made < _RECENT_S
