"""What a request may be sent to, and the worst case its budget must hold.

``Admission.narrow`` drops the candidates that cannot serve a request as asked (never
silently changed: a model's output limit, ``n``, chat vs embeddings) or that the caller's
key may not use; ``Admission.worst_cases`` is what each remaining candidate may cost at
most: its whole input (messages, tools and every other content sent) plus its output
limit, times ``n``. The gateway reserves the dearest of them before any call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from kanjia.access import AccessPolicy, Principal, WorstCase
from kanjia.catalog import ModelEntry, PricePeriod, Rates
from kanjia.errors import BadRequest, PermissionDenied
from kanjia.routing.directory import Target
from kanjia.routing.misses import closest_misses
from kanjia.routing.planner import RoutePlan, narrow
from kanjia.tokens import DEFAULT_OUTPUT_TOKENS, TokenCounter, choices, output_limit
from kanjia.vendors import VendorSpec

__all__ = ["Admission"]

#: a candidate the caller's key may not use
_FORBIDDEN = "not allowed for this key"
#: a request with more text than this (characters) not yet tokenized by earlier requests
#: has its tokens counted off the event loop (tokenizing it would hold the loop ~5 ms)
_NEW_CHARS = 32 * 1024
#: (vendor, model) → tokenizer encoding pairs remembered (pass-through names are many)
_ENCODINGS = 10_000
#: models whose prices of the current minute are remembered
_PRICED = 10_000
#: the last instant of a UTC minute, from its first
_MINUTE_END = timedelta(seconds=60) - timedelta(microseconds=1)


@dataclass(slots=True)
class _Counts:
    """One request's input tokens per tokenizer encoding (counted once each)."""

    tokens: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _MinutePrices:
    """A model's prices during one UTC minute: its period in force, and the rates of the
    off-peak (or peak) window in force, if any. Held only when neither changes within
    the minute (no period starts or ends in it; windows are whole local minutes)."""

    minute: int
    period: PricePeriod | None
    window: Rates | None


def _top_rates(rates: Rates) -> tuple[Decimal, Decimal]:
    """What ``catalog.most_cost`` charges a prompt token (the dearest way it may be
    billed) and an output token at ``rates``."""
    return max(rates.input, rates.cache_write,
               rates.cache_write if rates.cache_write_1h is None else rates.cache_write_1h), \
        rates.output


def _output_worst(body: dict[str, Any], entry: ModelEntry | None, prompt: int) -> int:
    """The most output tokens a chat request can be billed for: its output limit, else the
    model's, else what its context window leaves after the prompt, times ``n``."""
    limit = output_limit(body)
    if limit is None and entry is not None:
        if entry.max_output:
            limit = entry.max_output
        elif entry.context_window:
            limit = max(1, entry.context_window - prompt)
    return (limit or DEFAULT_OUTPUT_TOKENS) * choices(body)


def _whole_minutes(period: PricePeriod) -> bool:
    offset = period.tz.utcoffset(None)
    return offset is not None and offset.seconds % 60 == 0 and not offset.microseconds


class Admission:
    def __init__(self, counter: TokenCounter, specs: Mapping[str, VendorSpec],
                 reporting_currency: str,
                 load_tokenizer: Callable[[Target], Awaitable[None]]) -> None:
        self.counter = counter
        self.specs = specs
        self.reporting_currency = reporting_currency
        self._load = load_tokenizer
        #: per (vendor, model): its tokenizer's encoding, and whether it is loaded yet
        self._encodings: dict[tuple[str, str], tuple[str, bool]] = {}
        #: per model: its prices of the current minute (see ``_prices``)
        self._minutes: dict[ModelEntry, _MinutePrices] = {}
        #: per ``Rates`` (by identity, the object kept): its top prompt and output rates
        self._tops: dict[int, tuple[Rates, Decimal, Decimal]] = {}

    def narrow(self, plan: RoutePlan, body: dict[str, Any], endpoint: str, principal: Principal,
               access: AccessPolicy) -> RoutePlan:
        """``plan`` without the candidates that cannot serve this request as asked or that
        ``principal`` may not use; a 400 (403 when only the key stands in the way) when
        none is left."""
        def why_not(target: Target) -> str | None:
            if not access.may_use(principal, target.key):
                return _FORBIDDEN
            return self.unfit(target, body, endpoint)

        narrowed, reasons = narrow(plan, why_not)
        if narrowed.targets:
            return narrowed
        if all(why == _FORBIDDEN for _, why in reasons):
            keys = ", ".join(k for k, _ in reasons)
            tail = f" or any of its candidates ({keys})" if plan.route else ""
            raise PermissionDenied(f"key {principal.name!r} may not use "
                                   f"{plan.requested!r}{tail}")
        if plan.route is None:
            raise BadRequest(reasons[0][1])
        # with the candidates the planner had ruled out already, nearest misses first
        misses = [(c.key, c.reason) for c in narrowed.candidates if not c.kept]
        detail = closest_misses(misses or reasons)
        raise BadRequest(f"route {plan.requested!r}: no candidate can serve this request as "
                         f"asked ({detail})")

    def unfit(self, target: Target, body: dict[str, Any], endpoint: str) -> str | None:
        """Why ``target`` cannot serve ``body`` as asked, or None."""
        entry = target.entry
        if entry is not None:
            if endpoint == "chat" and "chat" not in entry.capabilities \
                    and "embeddings" in entry.capabilities:
                return f"{target.key} is an embeddings model: use /v1/embeddings"
            if endpoint == "embeddings" and "embeddings" not in entry.capabilities:
                return f"{target.key} is not an embeddings model"
        if endpoint != "chat":
            return None
        out = output_limit(body)
        if out is not None and entry is not None and entry.max_output \
                and out > entry.max_output:
            name = "max_completion_tokens" if body.get("max_completion_tokens") is not None \
                else "max_tokens"
            return (f"'{name}' is {out}, above {target.key}'s output limit of "
                    f"{entry.max_output} tokens")
        if choices(body) > 1:
            spec = self.specs.get(target.vendor)
            if spec is not None and not spec.supports_n:
                return (f"{target.vendor} does not support 'n' > 1: send one request per "
                        "choice")
        return None

    async def worst_cases(self, body: dict[str, Any], endpoint: str,
                          targets: Sequence[Target]) -> list[WorstCase]:
        """The most the request can cost on each of ``targets`` (None: no price)."""
        counts = _Counts()
        now = time.time()
        out: list[WorstCase] = []
        for target in targets:
            entry = target.entry
            prompt = await self._input_tokens(body, endpoint, target, counts)
            limit = _output_worst(body, entry, prompt) if endpoint == "chat" else 0
            most = self.most_cost(entry, prompt, limit, now) if entry is not None else None
            if most is None:
                out.append(WorstCase(target.key, None, self.reporting_currency, prompt + limit))
                continue
            out.append(WorstCase(target.key, most[0], most[1], prompt + limit))
        return out

    def most_cost(self, entry: ModelEntry, prompt: int, limit: int,
                  now: float) -> tuple[Decimal, str] | None:
        """``catalog.most_cost(entry, prompt, limit, at)`` at ``now`` (unix time), with
        what does not change within a minute remembered; None: no price then."""
        prices = self._prices(entry, now)
        period = prices.period
        if period is None:
            return None
        rates = prices.window
        if rates is None:
            rates = period.rates
            for tier in reversed(period.tiers):
                if prompt > tier.above_input_tokens:
                    rates = tier.rates
                    break
        tops = self._tops.get(id(rates))
        if tops is None or tops[0] is not rates:
            if len(self._tops) >= _PRICED:
                self._tops.clear()
            tops = self._tops[id(rates)] = (rates, *_top_rates(rates))
        return tops[1] * prompt + tops[2] * limit, period.currency

    def _prices(self, entry: ModelEntry, now: float) -> _MinutePrices:
        """``entry``'s period and window in force at ``now`` (unix time), as
        ``price_at`` and ``PricePeriod.rates_for`` find them; looked up once a minute."""
        minute = int(now // 60)
        known = self._minutes.get(entry)
        if known is not None and known.minute == minute:
            return known
        at = datetime.fromtimestamp(now, UTC)
        period = entry.price_at(at)
        window = period.window_at(at) if period is not None and period.windows else None
        prices = _MinutePrices(minute, period, None if window is None else window.rates)
        # the same all minute long? (a period may start at any instant; a window's hours
        # are whole minutes of a time zone whose offset is whole minutes)
        first = datetime.fromtimestamp(minute * 60, UTC)
        last = first + _MINUTE_END
        if entry.price_at(first) is period and entry.price_at(last) is period and (
                period is None or not period.windows or (
                    period.window_at(first) is window and period.window_at(last) is window
                    and _whole_minutes(period))):
            if len(self._minutes) >= _PRICED:
                self._minutes.clear()
            self._minutes[entry] = prices
        return prices

    async def _input_tokens(self, body: dict[str, Any], endpoint: str, target: Target,
                            counts: _Counts) -> int:
        """The request's input tokens with ``target``'s tokenizer (or a rough count when
        that is larger): every message, tool and other content it sends."""
        vendor, model, embeddings = target.vendor, target.model, endpoint == "embeddings"
        pair = (vendor, model)
        seen = self._encodings.get(pair)
        if seen is None:  # (family_for runs a list of patterns: once per model, not request)
            seen = (self.counter.family(vendor, model).encoding, False)
        encoding, loaded = seen
        known = counts.tokens.get(encoding)
        if known is not None:
            return known
        if not loaded:
            if not self.counter.ready(vendor, model):
                await self._load(target)
            if len(self._encodings) >= _ENCODINGS:
                self._encodings.clear()
            self._encodings[pair] = (encoding, True)

        # on the event loop unless much new text needs tokenizing (a long conversation's
        # earlier turns were counted by its earlier requests)
        n = self.counter.bound_request_tokens(vendor, model, body, embeddings,
                                              new_chars=_NEW_CHARS)
        if n is None:
            def count() -> int:
                bound = self.counter.bound_request_tokens(vendor, model, body, embeddings)
                assert bound is not None
                return bound

            n = await asyncio.to_thread(count)
        counts.tokens[encoding] = n
        return n
