"""Sell prices for resellers: what a tenant is charged for a request.

A tenant either has its own price list (per model pattern, per 1M tokens, in the
list's currency) or a markup on the vendor cost (``charge = cost × markup``);
without either the charge is the cost. Budgets apply to the charge.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from kanjia.errors import ConfigError
from kanjia.ledger.record import CallRecord

__all__ = ["MAX_MARKUP", "MAX_PRICE_MTOK", "PriceList", "SellPrice", "SellPrices", "Tenant",
           "Unpriced", "check_markup"]

_MTOK = Decimal(1_000_000)
#: the highest sell price per 1M tokens a tenant's list may set (the dearest catalog
#: model costs a few thousand CNY per 1M tokens), and the highest markup
MAX_PRICE_MTOK = Decimal(1_000_000)
MAX_MARKUP = Decimal(1000)


def check_markup(markup: Decimal) -> Decimal:
    """A markup, or ConfigError: a finite number above 0 and at most ``MAX_MARKUP``."""
    if not markup.is_finite() or markup <= 0 or markup > MAX_MARKUP:
        raise ConfigError(f"markup must be a number above 0 and at most {MAX_MARKUP}, "
                          "e.g. 1.2")
    return markup


@dataclass(frozen=True, slots=True)
class SellPrice:
    input_mtok: Decimal
    output_mtok: Decimal
    cached_mtok: Decimal | None = None
    cache_write_mtok: Decimal | None = None

    def amount(self, rec: CallRecord) -> Decimal:
        cached, write = rec.cached_tokens, rec.cache_write_tokens
        uncached = max(0, rec.input_tokens - cached - write)
        c = self.cached_mtok if self.cached_mtok is not None else self.input_mtok
        w = self.cache_write_mtok if self.cache_write_mtok is not None else self.input_mtok
        return (self.input_mtok * uncached + c * cached + w * write
                + self.output_mtok * rec.output_tokens) / _MTOK

    def ceiling(self, tokens: int) -> Decimal:
        """The most ``tokens`` tokens can cost, whatever their kind."""
        top = max(self.input_mtok, self.output_mtok, self.cached_mtok or 0,
                  self.cache_write_mtok or 0)
        return top * tokens / _MTOK


@dataclass(frozen=True, slots=True)
class PriceList:
    """``{"currency": "CNY", "models": {"deepseek/*": {"input_mtok": 2, "output_mtok": 8}}}``;
    the first matching pattern wins (``vendor/model``, shell-style wildcards)."""

    currency: str
    models: tuple[tuple[str, SellPrice], ...]

    def find(self, model_key: str) -> SellPrice | None:
        for pattern, price in self.models:
            if fnmatch.fnmatchcase(model_key, pattern):
                return price
        return None

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> PriceList:
        try:
            currency = str(data["currency"]).upper()
            models = tuple((str(pattern), SellPrice(**{k: _dec(v) for k, v in p.items()}))
                           for pattern, p in dict(data["models"]).items())
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise ConfigError(f"bad price list: {exc!r}; expected {{'currency': 'CNY', "
                              "'models': {'vendor/model': {'input_mtok': .., "
                              "'output_mtok': ..}}}") from None
        return cls(currency, models)

    def to_json(self) -> dict[str, Any]:
        return {"currency": self.currency,
                "models": {pattern: {k: str(v) for k, v in (
                    ("input_mtok", p.input_mtok), ("output_mtok", p.output_mtok),
                    ("cached_mtok", p.cached_mtok), ("cache_write_mtok", p.cache_write_mtok))
                    if v is not None} for pattern, p in self.models}}


def _dec(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"bad price {value!r}: expected a number")
    out = Decimal(str(value))
    if not out.is_finite() or out < 0 or out > MAX_PRICE_MTOK:
        raise ValueError(f"bad price {value!r}: expected a number from 0 to "
                         f"{MAX_PRICE_MTOK} per 1M tokens")
    return out


@dataclass(frozen=True, slots=True)
class Unpriced:
    """What budgets do with a model that has no price (settings ``[budgets]``):
    charge it at ``price`` (per 1M tokens, in ``currency``), or with ``allow`` let keys
    with a budget call it at no charge; with neither such a key is refused."""

    price: SellPrice | None = None
    currency: str = "CNY"
    allow: bool = False


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str
    markup: Decimal | None = None
    price_list: PriceList | None = None
    #: why its stored markup or price list cannot be used (written before they were
    #: bounded): its requests are refused before any vendor is called
    error: str | None = None


class SellPrices:
    """Charges for records and reservations, from the tenants ``lookup`` knows."""

    def __init__(self, lookup: Callable[[str], Tenant | None],
                 unpriced: Unpriced | None = None) -> None:
        self._lookup = lookup
        self.unpriced = unpriced or Unpriced()

    def charge(self, rec: CallRecord) -> tuple[Decimal, str]:
        tenant = self._lookup(rec.tenant) if rec.tenant else None
        if tenant is not None and tenant.price_list is not None and rec.vendor:
            price = tenant.price_list.find(f"{rec.vendor}/{rec.model}")
            if price is not None:
                return price.amount(rec), tenant.price_list.currency
        cost, currency = rec.cost, rec.currency
        fallback = self.unpriced.price
        if fallback is not None and rec.vendor and rec.price_period == "unpriced":
            cost, currency = fallback.amount(rec), self.unpriced.currency
        if tenant is not None and tenant.markup is not None:
            return cost * tenant.markup, currency
        return cost, currency

    def prices_unpriced(self, tenant_name: str | None, model_key: str) -> bool:
        """Is a model without a catalog price charged something all the same (the
        tenant's price list names it, or the settings give unpriced models a price)?"""
        if self.unpriced.price is not None:
            return True
        tenant = self._lookup(tenant_name) if tenant_name else None
        return tenant is not None and tenant.price_list is not None \
            and tenant.price_list.find(model_key) is not None

    def stamp(self, rec: CallRecord) -> None:
        """Set the record's charge (a gateway sink; runs before the ledger's)."""
        if rec.charge is None:
            rec.charge, rec.charge_currency = self.charge(rec)

    def ceiling(self, tenant_name: str | None, model_key: str, max_cost: Decimal | None,
                currency: str, tokens: int) -> tuple[Decimal, str]:
        """The most a request may be charged, given its maximum vendor cost (None: the
        model has no price; the unpriced price, if any, stands in)."""
        tenant = self._lookup(tenant_name) if tenant_name else None
        if tenant is not None and tenant.price_list is not None:
            price = tenant.price_list.find(model_key)
            if price is not None:
                return price.ceiling(tokens), tenant.price_list.currency
        if max_cost is None:
            fallback = self.unpriced.price
            max_cost, currency = (fallback.ceiling(tokens), self.unpriced.currency) \
                if fallback is not None else (Decimal(0), currency)
        if tenant is not None and tenant.markup is not None:
            return max_cost * tenant.markup, currency
        return max_cost, currency
