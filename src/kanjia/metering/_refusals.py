"""What a request may cost at most (``WorstCase``), and how a refusal says why."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

from kanjia.errors import BudgetExceeded, PermissionDenied, RateLimited
from kanjia.ledger import from_nano
from kanjia.metering._registry import Budget, KeyInfo
from kanjia.metering._windows import window_reset
from kanjia.metering.limits import Claim, Denied

__all__ = ["UnpricedModel", "WorstCase", "refusal"]


class UnpricedModel(PermissionDenied):
    """A key with a budget asked for a model without a price (nothing to reserve)."""

    code = "model_not_priced"


class WorstCase(NamedTuple):
    """The most one candidate of a request can cost: ``amount`` (None: the model has no
    price) in ``currency`` for at most ``tokens`` tokens (input plus every output)."""

    model_key: str
    amount: Decimal | None
    currency: str
    tokens: int


def _money(amount: Decimal) -> str:
    """4 decimals, or down to the nano-unit for amounts below 1 (a small budget's)."""
    step = Decimal("0.0001") if abs(amount) >= 1 else Decimal("0.000000001")
    return format(amount.quantize(step).normalize(), "f")


def refusal(denied: Denied, key: KeyInfo, budgets: Sequence[Budget], claims: Sequence[Claim],
            now: float) -> Exception:
    """The 429 of a request the limit store refused: which budget (what it has spent and
    holds, what this request may cost, when it resets) or which rate limit."""
    if denied.kind == "budget":
        b = budgets[denied.index]
        who = f"key {key.name!r}" if b.scope == "key" else f"tenant {b.subject!r}"
        used = from_nano(denied.spent)
        held = from_nano(denied.reserved)
        when = window_reset(b.period, now)
        span = {"day": "today", "month": "this month", "total": "in total"}[b.period]
        tail = f"; it resets on {when} (UTC)" if when else ""
        inflight = f" plus {_money(held)} held by requests in flight" if held else ""
        need = from_nano(claims[denied.index].amount)
        return BudgetExceeded(
            f"budget exceeded: {who} has spent {_money(used)} {b.currency}{inflight} "
            f"of its {_money(b.amount)} {b.currency} budget {span}, and this request "
            f"may cost up to {_money(need)} {b.currency} (its input plus its output "
            f"limit){tail}")
    limit = key.rpm if denied.kind == "rpm" else key.tpm
    unit = "requests" if denied.kind == "rpm" else "tokens"
    wait = int(denied.retry_after + 0.999)
    return RateLimited(f"rate limit: key {key.name!r} may send {limit} {unit} per minute; "
                       f"retry in {wait}s", retry_after=float(wait))
