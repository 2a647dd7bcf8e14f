"""Per-request price controls in OpenRouter's shape: the ``provider`` object of a chat
request and the ``:floor`` / ``:nitro`` model suffixes.

``provider`` fields (OpenRouter's "provider routing"; a provider is a kanjia vendor id):

- ``max_price``: ``prompt`` and ``completion`` in USD per million tokens (strings or
  numbers), or in ``currency`` ("USD" or "CNY", kanjia's addition); a candidate whose price
  in force now (tier and off-peak window included) is above either is excluded;
  ``request``, ``image`` and ``audio`` are accepted and not used (kanjia prices none);
- ``only`` / ``ignore``: vendors to keep / skip (an unknown vendor is a 400 naming it);
- ``order``: vendors to try first, in this order;
- ``sort``: ``price`` (cheapest expected cost first), ``throughput`` or ``latency`` (the
  lowest observed latency first: kanjia measures latency, not throughput; unmeasured
  candidates last), as a string or ``{"by": ...}``;
- ``allow_fallbacks``: false keeps only the ``order`` vendors, or without ``order`` only
  the first candidate (its deployments still fail over to each other);
- ``data_collection``: "allow" or "deny"; accepted, and excludes nothing: no vendor in
  kanjia's data is flagged as training on requests;
- ``require_parameters``, ``zdr``, ``enforce_distillable_text``, ``quantizations``,
  ``preferred_min_throughput``, ``preferred_max_latency``: accepted, not used.

``model:floor`` is ``sort: "price"``, ``model:nitro`` is ``sort: "throughput"``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from kanjia.catalog import Catalog
from kanjia.errors import BadRequest
from kanjia.routing.health import HealthBoard

if TYPE_CHECKING:
    from kanjia.routing.directory import Target
    from kanjia.routing.planner import RoutePlan

__all__ = ["PriceControls", "apply_controls", "take_controls"]

SUFFIXES = {":floor": "price", ":nitro": "throughput"}
_SORTS = frozenset({"price", "throughput", "latency"})
_ACCEPTED = frozenset({"require_parameters", "zdr", "enforce_distillable_text",
                       "quantizations", "preferred_min_throughput", "preferred_max_latency"})
_KNOWN = frozenset({"max_price", "only", "ignore", "order", "sort", "allow_fallbacks",
                    "data_collection"}) | _ACCEPTED
_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class PriceControls:
    max_prompt: Decimal | None = None      # per million prompt tokens, in ``currency``
    max_completion: Decimal | None = None  # per million completion tokens
    currency: str = "USD"
    only: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    sort: str | None = None
    allow_fallbacks: bool = True
    data_collection: str = "allow"

    def key(self) -> dict[str, Any]:
        """What changes the answer (part of the response cache's key)."""
        return {"max_prompt": str(self.max_prompt), "max_completion": str(self.max_completion),
                "currency": self.currency, "only": self.only, "ignore": self.ignore,
                "order": self.order, "sort": self.sort,
                "allow_fallbacks": self.allow_fallbacks}


def _vendors(provider: Mapping[str, Any], name: str, known: Collection[str]) -> tuple[str, ...]:
    value = provider.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"provider.{name} must be an array of vendor names")
    out = tuple(v.strip().lower() for v in value)
    unknown = [v for v in out if v not in known]
    if unknown:
        raise BadRequest(f"provider.{name}: unknown vendor {unknown[0]!r} "
                         f"(known: {', '.join(sorted(known))})")
    return out


def _price(max_price: Mapping[str, Any], name: str) -> Decimal | None:
    value = max_price.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadRequest(f"provider.max_price.{name} must be a number or a numeric string")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise BadRequest(f"provider.max_price.{name} must be a number or a numeric "
                         "string") from None
    if not amount.is_finite() or amount < 0:
        raise BadRequest(f"provider.max_price.{name} must be a non-negative number")
    return amount


def _parse(provider: Any, known: Collection[str], sort: str | None) -> PriceControls:
    if not isinstance(provider, dict):
        raise BadRequest("'provider' must be an object")
    extra = sorted(set(provider) - _KNOWN)
    if extra:
        raise BadRequest(f"provider.{extra[0]} is not a provider routing field "
                         f"(known: {', '.join(sorted(_KNOWN))})")
    fields: dict[str, Any] = {}
    mp = provider.get("max_price")
    if mp is not None:
        if not isinstance(mp, dict):
            raise BadRequest("provider.max_price must be an object")
        for part in ("request", "image", "audio"):
            _price(mp, part)  # checked, not used
        fields["max_prompt"] = _price(mp, "prompt")
        fields["max_completion"] = _price(mp, "completion")
        cur = mp.get("currency", "USD")
        if not isinstance(cur, str) or cur.upper() not in ("USD", "CNY"):
            raise BadRequest("provider.max_price.currency must be 'USD' or 'CNY'")
        fields["currency"] = cur.upper()
    for name in ("only", "ignore", "order"):
        if provider.get(name) is not None:
            fields[name] = _vendors(provider, name, known)
    by = provider.get("sort")
    if isinstance(by, dict):
        by = by.get("by")
    if by is not None:
        if not isinstance(by, str) or by not in _SORTS:
            raise BadRequest("provider.sort must be 'price', 'throughput' or 'latency'")
        sort = by
    fields["sort"] = sort
    fb = provider.get("allow_fallbacks")
    if fb is not None:
        if not isinstance(fb, bool):
            raise BadRequest("provider.allow_fallbacks must be a boolean")
        fields["allow_fallbacks"] = fb
    dc = provider.get("data_collection")
    if dc is not None:
        if dc not in ("allow", "deny"):
            raise BadRequest("provider.data_collection must be 'allow' or 'deny'")
        fields["data_collection"] = dc
    return PriceControls(**fields)


def take_controls(body: dict[str, Any], known: Collection[str]) -> PriceControls | None:
    """Take the price controls out of a chat request: its ``provider`` object (never
    sent to a vendor) and a ``:floor``/``:nitro`` suffix of its ``model`` (removed)."""
    sort = None
    model = body.get("model")
    if isinstance(model, str):
        for suffix, by in SUFFIXES.items():
            if model.endswith(suffix) and len(model) > len(suffix):
                body["model"], sort = model[: -len(suffix)], by
                break
    provider = body.pop("provider", None)
    if provider is None:
        return PriceControls(sort=sort) if sort is not None else None
    return _parse(provider, known, sort)


def _per_m(catalog: Catalog, target: Target, at: datetime, prompt: int,
           currency: str) -> tuple[Decimal, Decimal] | None:
    """(prompt, completion) price per million tokens in force for this request."""
    entry = target.entry
    period = entry.price_at(at) if entry is not None else None
    if period is None:
        return None
    rates = period.rates_for(at, prompt)
    fx = catalog.fx
    day = at.date()
    return (fx.convert(rates.input * _MILLION, period.currency, currency, day),
            fx.convert(rates.output * _MILLION, period.currency, currency, day))


def _fmt(amount: Decimal) -> str:
    return format(amount.quantize(Decimal("0.0001")).normalize(), "f")


def apply_controls(plan: RoutePlan, controls: PriceControls, *, catalog: Catalog,
                   health: HealthBoard, at: datetime,
                   exclude: Callable[[Target, str], None] | None = None) -> None:
    """Filter and reorder ``plan.targets`` by ``controls`` (in place). Raises a 400 that
    names the constraint which excluded the last candidate when none is left."""
    c = controls
    kept: list[Target] = []
    last = ""
    priced_out: list[str] = []
    for t in plan.targets:
        why = None
        if c.only is not None and t.vendor not in c.only:
            why = f"provider.only: vendor {t.vendor} is not in only"
        elif t.vendor in c.ignore:
            why = f"provider.ignore: vendor {t.vendor} is ignored"
        elif c.max_prompt is not None or c.max_completion is not None:
            prices = _per_m(catalog, t, at, plan.prompt_tokens, c.currency)
            if prices is None:
                why = f"provider.max_price: {t.key} has no price in force"
            else:
                p, o = prices
                if c.max_prompt is not None and p > c.max_prompt:
                    why = (f"provider.max_price: {t.key} costs {_fmt(p)} {c.currency} per "
                           f"million prompt tokens, more than max_price.prompt "
                           f"{_fmt(c.max_prompt)}")
                elif c.max_completion is not None and o > c.max_completion:
                    why = (f"provider.max_price: {t.key} costs {_fmt(o)} {c.currency} per "
                           f"million completion tokens, more than max_price.completion "
                           f"{_fmt(c.max_completion)}")
                if why is not None:
                    priced_out.append(why)
        if why is None:
            kept.append(t)
            continue
        last = why
        if exclude is not None:
            exclude(t, why)
    if not kept:
        if priced_out and len(priced_out) == len(plan.targets):
            raise BadRequest(f"provider.max_price: every candidate for {plan.requested!r} "
                             f"costs more than max_price ({priced_out[-1].split(': ', 1)[1]})")
        raise BadRequest(f"no candidate for {plan.requested!r} satisfies the provider "
                         f"preferences; the last was excluded by {last}")
    if c.sort is not None:
        kept = _sorted(plan, kept, c.sort, health)
    if c.order:
        rank = {v: i for i, v in enumerate(c.order)}
        kept.sort(key=lambda t: rank.get(t.vendor, len(rank)))
        if not c.allow_fallbacks:
            kept = [t for t in kept if t.vendor in rank]
            if not kept:
                raise BadRequest(f"no candidate for {plan.requested!r} satisfies the "
                                 "provider preferences; the last was excluded by "
                                 "provider.order with allow_fallbacks false")
    elif not c.allow_fallbacks:
        kept = kept[:1]
    if c.sort is not None or c.order:
        plan.cascade = None  # the client chose the order
    plan.targets = kept


def _sorted(plan: RoutePlan, targets: list[Target], sort: str,
            health: HealthBoard) -> list[Target]:
    costs = {cand.key: cand.expected_cost_ref for cand in plan.candidates if cand.kept}

    def cost(t: Target) -> Decimal:
        value = costs.get(t.key)
        return value if value is not None else Decimal("Infinity")

    if sort == "price":
        return sorted(targets, key=cost)

    def latency(t: Target) -> float:
        seen = [x for d in t.deployments
                if (x := health.get(d.id).latency_ewma_ms) is not None]
        return min(seen) if seen else float("inf")
    return sorted(targets, key=lambda t: (latency(t), cost(t)))
