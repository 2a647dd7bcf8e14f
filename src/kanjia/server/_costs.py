"""What a call cost, written into the usage object the client reads.

The usage object of a chat completion, an embeddings reply and a stream's usage chunk
carries ``cost`` (a JSON number, in ``cost_currency``: the vendor's billing currency)
next to the vendor's own token fields, as OpenRouter carries ``usage.cost``. Extra keys
in ``usage`` are ignored by the official SDKs. A model without a price gets
``"cost": null``: an unknown cost is never shown as zero.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from kanjia.catalog import ModelEntry, Usage, cost_of

__all__ = ["Priced", "add_cost", "chunk_with_cost", "cost_number", "price_of"]

#: (amount or None when unpriced, currency, price period)
Priced = tuple[Decimal | None, str, str]


def cost_number(amount: Decimal | None) -> float | None:
    """A cost as a JSON number (nano-unit precision, what the ledger stores)."""
    return None if amount is None else float(round(amount, 9))


def price_of(entry: ModelEntry | None, usage: Usage, ts: float, fallback: str) -> Priced:
    """The cost of ``usage`` on ``entry`` for a request that arrived at ``ts``."""
    if entry is None:
        return None, fallback, "unpriced"
    cost = cost_of(usage, entry, datetime.fromtimestamp(ts, UTC))
    if not cost.priced:
        return None, cost.currency, cost.period_id
    return cost.amount, cost.currency, cost.period_id


def _usage_of(obj: dict[str, Any], usage: Usage | None, endpoint: str) -> dict[str, Any]:
    found = obj.get("usage")
    if isinstance(found, dict):
        return found
    made: dict[str, Any] = {}
    if usage is not None:  # the vendor sent none: what the ledger counted
        made["prompt_tokens"] = usage.input_tokens
        if endpoint == "chat":
            made["completion_tokens"] = usage.output_tokens
        made["total_tokens"] = usage.input_tokens + usage.output_tokens
    obj["usage"] = made
    return made


#: bodies larger than this get their usage object edited in place, not re-serialised:
#: parsing and writing a whole body costs ~2.7 ms per MB of event-loop time (embeddings)
_SPLICE_ABOVE = 64 * 1024


def add_cost(body: bytes, amount: Decimal | None, currency: str, *,
             usage: Usage | None = None, endpoint: str = "chat",
             estimated: bool = False) -> bytes:
    """``body`` (a JSON object) with ``usage.cost`` and ``usage.cost_currency`` set.

    When the vendor's body has no usage object, one is made from ``usage`` (the counts
    the ledger holds) and marked ``"estimated": true`` when they were estimated.
    A body that is not a JSON object is returned unchanged.
    """
    if len(body) > _SPLICE_ABOVE:
        spliced = _splice(body, amount, currency, usage, endpoint, estimated)
        if spliced is not None:
            return spliced
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(obj, dict):
        return body
    had = isinstance(obj.get("usage"), dict)
    target = _usage_of(obj, usage, endpoint)
    target["cost"] = cost_number(amount)
    target["cost_currency"] = currency
    if estimated and not had:
        target["estimated"] = True
    return orjson.dumps(obj)


def chunk_with_cost(payload: bytes, priced: Priced) -> bytes:
    """A stream chunk's payload with ``usage.cost`` added when it carries a usage object,
    at its top level or in its ``response`` (the Responses API's terminal events);
    ``"usage": null`` and chunks without usage are returned unchanged."""
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload
    usage = obj.get("usage") if isinstance(obj, dict) else None
    if usage is None and isinstance(obj, dict) and isinstance(obj.get("response"), dict):
        usage = obj["response"].get("usage")  # a Responses event (``response.completed``)
    if not isinstance(usage, dict):
        return payload
    usage["cost"] = cost_number(priced[0])
    usage["cost_currency"] = priced[1]
    return orjson.dumps(obj)


def _splice(body: bytes, amount: Decimal | None, currency: str, usage: Usage | None,
            endpoint: str, estimated: bool) -> bytes | None:
    """``add_cost`` for a large body, touching only its last ``"usage"`` object (where
    OpenAI-style replies put it, after ``data``); None when the body is not shaped so."""
    end = len(body.rstrip())
    if end < 2 or body[end - 1:end] != b"}":
        return None
    at = body.rfind(b'"usage"')
    if at < 0:  # none: one made from the ledger's counts, before the closing brace
        made: dict[str, Any] = {}
        _usage_of(made, usage, endpoint)
        made["usage"].update(cost=cost_number(amount), cost_currency=currency)
        if estimated:
            made["usage"]["estimated"] = True
        return b"".join((memoryview(body)[:end - 1], b',"usage":',
                         orjson.dumps(made["usage"]), b"}"))  # one copy of the body
    start = _skip(body, _skip(body, at + 7) + 1)
    if body[at + 7:start].strip()[:1] != b":" or body[start:start + 1] != b"{":
        return None
    stop = _close(body, start)
    if stop < 0:
        return None
    try:
        found = orjson.loads(body[start:stop])
    except orjson.JSONDecodeError:
        return None
    found["cost"] = cost_number(amount)
    found["cost_currency"] = currency
    view = memoryview(body)
    return b"".join((view[:start], orjson.dumps(found), view[stop:]))  # one copy


def _skip(body: bytes, i: int) -> int:
    """The index of the first non-blank byte at or after ``i``."""
    while i < len(body) and body[i] in b" \t\r\n":
        i += 1
    return i


def _close(body: bytes, start: int) -> int:
    """The index just past the object that opens at ``start``; -1 if it never closes."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(body)):
        c = body[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c == 0x7B:
            depth += 1
        elif c == 0x7D:
            depth -= 1
            if depth == 0:
                return i + 1
    return -1
