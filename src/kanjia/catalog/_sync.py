"""A guarded sync: other catalogs' prices proposed as overrides, never applied silently.

``read_price_file`` reads LiteLLM's ``model_prices_and_context_window.json`` (USD per
token) or kanjia's own vendor TOML format; ``genai_offers`` reads the genai-prices
snapshot for kanjia's own models. ``plan_sync`` compares each offer with the price the
catalog has now: equal values (within the tolerance) are left alone, decreases and
small increases are accepted, increases beyond ``max_increase`` are held for review,
and an offer in another currency than the model is billed in is held too (converting
would change the bill's currency). Accepted changes become ``Override`` entries with
their source and date, for the user's override file.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kanjia._extras import require
from kanjia.catalog._catalog import Catalog
from kanjia.catalog._model import ModelEntry
from kanjia.catalog._override import Override
from kanjia.catalog._schema import VendorFile
from kanjia.errors import ConfigError

__all__ = ["LITELLM_PROVIDERS", "Change", "Offer", "SyncPlan", "genai_offers", "plan_sync",
           "read_price_file"]

PRICES = ("input_mtok", "cached_mtok", "cache_write_mtok", "output_mtok")
_MEGA = Decimal(1_000_000)
#: LiteLLM ``litellm_provider`` -> kanjia vendor id
LITELLM_PROVIDERS: Mapping[str, str] = {
    "openai": "openai", "text-completion-openai": "openai", "anthropic": "anthropic",
    "gemini": "gemini", "deepseek": "deepseek", "dashscope": "qwen", "moonshot": "moonshot",
    "minimax": "minimax", "volcengine": "doubao", "tencent": "hunyuan",
    "openrouter": "openrouter", "mistral": "mistral", "groq": "groq", "xai": "xai",
    "together_ai": "together", "fireworks_ai": "fireworks", "cerebras": "cerebras",
    "perplexity": "perplexity", "novita": "novita", "deepinfra": "deepinfra",
    "cohere": "cohere", "cohere_chat": "cohere", "bedrock": "bedrock",
    "bedrock_converse": "bedrock", "azure": "azure", "zai": "zai", "voyage": "voyage",
    "cloudflare": "cloudflare", "databricks": "databricks", "baseten": "baseten",
    "siliconflow": "siliconflow",
}


@dataclass(frozen=True, slots=True)
class Offer:
    """Another catalog's price for one model, per 1M tokens."""

    vendor: str
    model: str
    currency: str
    prices: Mapping[str, Decimal]            # PRICES keys that the source gives
    context_window: int | None
    source: str

    @property
    def key(self) -> str:
        return f"{self.vendor}/{self.model}"


@dataclass(frozen=True, slots=True)
class Change:
    key: str
    currency: str
    old: Mapping[str, Decimal | None]
    new: Mapping[str, Decimal]
    increase: Decimal | None                  # largest relative increase (0.25 = +25%)
    held: str | None                          # why it is held for review, or None
    source: str
    offer_currency: str = ""                  # the offer's currency (new prices are in it)

    def override(self, today: date) -> Override:
        was = ", ".join(f"{k.removesuffix('_mtok')} {_text(v)}" for k, v in self.old.items()
                        if v is not None)
        return Override(model=self.key, start=today, currency=self.currency,
                        input_mtok=self.new["input_mtok"],
                        cached_mtok=self.new.get("cached_mtok"),
                        cache_write_mtok=self.new.get("cache_write_mtok"),
                        output_mtok=self.new["output_mtok"], source=self.source,
                        checked=today, evidence="S",
                        note=f"was {was} {self.currency}" if was else None)


@dataclass(frozen=True, slots=True)
class SyncPlan:
    accepted: tuple[Change, ...]
    held: tuple[Change, ...]
    unchanged: int
    unknown: tuple[str, ...] = field(default=())   # offers for models the catalog lacks


def _text(d: Decimal | None) -> str:
    return "-" if d is None else format(d.normalize(), "f")


def _bad(label: str, entry: str, field_name: str, msg: str) -> ConfigError:
    return ConfigError(f"{label}: entry {entry!r}: field {field_name}: {msg}")


def read_price_file(path: Path, vendors: Iterable[str] | None = None) -> list[Offer]:
    """Offers from a LiteLLM price JSON or a kanjia vendor TOML (by its content)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc}") from None
    if text.lstrip().startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not JSON: {exc}") from None
        return _litellm(raw, str(path))
    try:
        toml = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: neither LiteLLM JSON nor kanjia TOML: {exc}") from None
    return _kanjia(toml, Path(path).stem, str(path))


def _litellm(raw: Any, label: str) -> list[Offer]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: expected a JSON object of model -> prices")
    offers: list[Offer] = []
    for name, entry in raw.items():
        if name == "sample_spec":
            continue
        if not isinstance(entry, dict):
            raise _bad(label, name, "(entry)", "not an object")
        provider = entry.get("litellm_provider")
        if provider is not None and not isinstance(provider, str):
            raise _bad(label, name, "litellm_provider", "not a string")
        prices: dict[str, Decimal] = {}
        for ours, theirs in (("input_mtok", "input_cost_per_token"),
                             ("cached_mtok", "cache_read_input_token_cost"),
                             ("cache_write_mtok", "cache_creation_input_token_cost"),
                             ("output_mtok", "output_cost_per_token")):
            value = entry.get(theirs)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise _bad(label, name, theirs, "not a number")
            try:
                per = Decimal(str(value))
            except InvalidOperation:
                raise _bad(label, name, theirs, "not a number") from None
            if not per.is_finite() or per < 0:
                raise _bad(label, name, theirs, "not a price (negative or not finite)")
            prices[ours] = (per * _MEGA).normalize()
        window = entry.get("max_input_tokens")
        if window is not None and (isinstance(window, bool) or not isinstance(window, int)
                                   or window <= 0):
            raise _bad(label, name, "max_input_tokens", "not a positive integer")
        vendor = LITELLM_PROVIDERS.get(provider or "")
        if vendor is None or "input_mtok" not in prices or "output_mtok" not in prices:
            continue
        model = name
        for prefix in (f"{provider}/", f"{vendor}/"):
            if model.startswith(prefix):
                model = model[len(prefix):]
                break
        offers.append(Offer(vendor, model, "USD", prices, window,
                            f"LiteLLM model_prices_and_context_window.json ({name})"))
    return offers


def _kanjia(raw: dict[str, Any], vendor: str, label: str) -> list[Offer]:
    try:
        spec = VendorFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"]
        entry = "(file)"
        if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
            models = raw.get("models")
            item = models[loc[1]] if isinstance(models, list) and loc[1] < len(models) else {}
            entry = str(item.get("id", f"#{loc[1]}")) if isinstance(item, dict) else \
                f"#{loc[1]}"
            loc = loc[2:]
        raise _bad(label, entry, ".".join(str(p) for p in loc) or "(entry)",
                   err["msg"]) from None
    offers: list[Offer] = []
    for m in spec.models:
        if not m.periods:
            continue
        p = m.periods[-1]
        if p.free or p.input_mtok is None or p.output_mtok is None:
            continue
        prices = {k: getattr(p, k) for k in PRICES if getattr(p, k) is not None}
        offers.append(Offer(vendor, m.id, p.currency or spec.vendor.currency, prices,
                            m.context_window, f"{label} ({m.id}): {p.source}"))
    return offers


def genai_offers(catalog: Catalog) -> list[Offer]:
    """The genai-prices snapshot's current prices for kanjia's own models."""
    require("genai_prices", "catalog", "reading genai-prices", "genai-prices")
    from genai_prices.data_snapshot import get_snapshot
    from genai_prices.types import TieredPrices

    from kanjia.catalog._compare import GENAI_PROVIDERS

    snapshot = get_snapshot()
    from importlib.metadata import version

    pkg = version("genai-prices")
    now = datetime.now(UTC)
    offers: list[Offer] = []
    for m in catalog.models:
        ref = m.catalog_ids.get("genai_prices")
        if ref is not None:
            provider_id, _, model_ref = ref.partition("/")
        elif m.vendor in GENAI_PROVIDERS:
            provider_id, model_ref = GENAI_PROVIDERS[m.vendor], m.model
        else:
            continue
        try:
            provider, info = snapshot.find_provider_model(model_ref, None, provider_id, None)
        except LookupError:
            continue
        price = info.get_prices(now)
        prices: dict[str, Decimal] = {}
        for ours, theirs in (("input_mtok", "input_mtok"), ("cached_mtok", "cache_read_mtok"),
                             ("cache_write_mtok", "cache_write_mtok"),
                             ("output_mtok", "output_mtok")):
            v = getattr(price, theirs, None)
            if v is not None:
                prices[ours] = v.base if isinstance(v, TieredPrices) else v
        if "input_mtok" not in prices or "output_mtok" not in prices:
            continue
        url = (provider.pricing_urls or [""])[0]
        offers.append(Offer(m.vendor, m.model, "USD", prices, info.context_window,
                            f"genai-prices {pkg} {provider.id}/{info.id}"
                            + (f"; {url}" if url else "")))
    return offers


def plan_sync(catalog: Catalog, offers: Sequence[Offer], max_increase: Decimal,
              tolerance: Decimal = Decimal("0.05"), at: datetime | None = None,
              vendors: Sequence[str] = ()) -> SyncPlan:
    at = at or datetime.now(UTC)
    accepted: list[Change] = []
    held: list[Change] = []
    unknown: list[str] = []
    unchanged = 0
    for offer in offers:
        if vendors and offer.vendor not in vendors:
            continue
        entry = catalog.get(offer.vendor, offer.model)
        if entry is None:
            unknown.append(offer.key)
            continue
        change = _change(catalog, entry, offer, at, max_increase, tolerance)
        if change is None:
            unchanged += 1
        elif change.held:
            held.append(change)
        else:
            accepted.append(change)
    return SyncPlan(tuple(accepted), tuple(held), unchanged, tuple(unknown))


def _change(catalog: Catalog, entry: ModelEntry, offer: Offer, at: datetime,
            max_increase: Decimal, tolerance: Decimal) -> Change | None:
    period = entry.price_at(at)
    old: dict[str, Decimal | None] = {k: getattr(period, k) if period else None
                                      for k in PRICES}
    if period is not None and period.free:
        old = dict.fromkeys(PRICES, Decimal(0))
    currency = period.currency if period is not None else entry.currency
    differs = False
    increase: Decimal | None = None
    for k, offered in offer.prices.items():
        # compared in our billing currency (at the catalog's rate of the day)
        new = offered if offer.currency == currency else \
            catalog.fx.convert(offered, offer.currency, currency, at.date())
        mine = old.get(k)
        if mine is None:
            differs = differs or k in ("input_mtok", "output_mtok")
            continue
        top = max(abs(mine), abs(new))
        if top and abs(mine - new) / top > tolerance:
            differs = True
        if new > mine:
            rel = (new - mine) / mine if mine else Decimal("Infinity")
            increase = rel if increase is None else max(increase, rel)
    if not differs:
        return None
    reason: str | None = None
    if offer.currency != currency:
        reason = (f"the model is billed in {currency}, the offer is in {offer.currency}: "
                  "check the vendor's own page")
    elif increase is not None and increase > max_increase:
        size = f"{increase:.0%}" if increase.is_finite() else "an increase from 0"
        reason = f"increase of {size} is over the {max_increase:.0%} limit"
    if period is not None and (period.tiers or period.windows):
        reason = reason or "the model has tiers or time windows: change it by hand"
    for k in ("cached_mtok", "cache_write_mtok"):
        mine = old.get(k)
        if k not in offer.prices and mine is not None and mine != old.get("input_mtok"):
            # applying it would bill cached tokens at the full input price
            reason = reason or f"the offer has no {k.removesuffix('_mtok')} price and ours has one"
    return Change(entry.key, currency, old, dict(offer.prices), increase, reason,
                  offer.source, offer.currency)
