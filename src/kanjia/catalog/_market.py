"""Load the rest of the market from ``catalog/market/genai_prices.json``.

That file is generated from the genai-prices package snapshot by
``kanjia catalog build-market`` (see ``_market_build``); this module only reads it, with
no pydantic and no genai-prices import, so the gateway starts fast. Every period
carries its source (the genai-prices version, provider and model id, and the
provider's pricing page) and the evidence code the file states.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timezone
from decimal import Decimal
from importlib.resources import files
from types import MappingProxyType
from typing import Any

from kanjia.catalog._model import ModelEntry, PricePeriod, PriceTier, PriceWindow, Rates, VendorInfo
from kanjia.errors import ConfigError

__all__ = ["MARKET_LABEL", "build_period", "load_market"]

MARKET_LABEL = "catalog/market/genai_prices.json"
_EMPTY: Mapping[str, str] = MappingProxyType({})
_ZERO = Decimal(0)


def load_market(vendors: Mapping[str, VendorInfo]) -> tuple[
        dict[str, VendorInfo], Callable[[], list[ModelEntry]]]:
    """New vendors (read now) and a loader of the market's models (built when called:
    about 35 ms for 2,000 models, which a gateway that never needs them does not pay)."""
    item = files("kanjia.catalog") / "market" / "genai_prices.json"
    try:
        raw = json.loads(item.read_text(encoding="utf-8"))
        new = _vendors(raw, vendors)
    except FileNotFoundError:
        return {}, list
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _broken(exc) from None
    everyone = {**vendors, **new}

    def models() -> list[ModelEntry]:
        try:
            return _models(raw, everyone)
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            raise _broken(exc) from None

    return new, models


def _broken(exc: Exception) -> ConfigError:
    return ConfigError(f"{MARKET_LABEL}: broken ({exc!r}); rebuild it with "
                       "`kanjia catalog build-market`")


def _vendors(raw: dict[str, Any], known: Mapping[str, VendorInfo]) -> dict[str, VendorInfo]:
    new: dict[str, VendorInfo] = {}
    for vid, v in raw["vendors"].items():
        if vid not in known:
            new[vid] = VendorInfo(id=vid, name=v["name"], region="global", currency="USD",
                                  pricing_urls=tuple(v["pricing_urls"]), tz=UTC,
                                  note=f"prices from {v['source']}")
    return new


def _models(raw: dict[str, Any], vendors: Mapping[str, VendorInfo]) -> list[ModelEntry]:
    checked = date.fromisoformat(raw["checked"])
    evidence = str(raw["evidence"])
    sources = {vid: str(v["source"]) for vid, v in raw["vendors"].items()}
    models: list[ModelEntry] = []
    for m in raw["models"]:
        vid = m["vendor"]
        vendor = vendors[vid]
        pkg, _, rest = sources[vid].partition("; ")
        source = f"{pkg}/{m['id']}" + (f"; {rest}" if rest else "")
        specs = m["periods"]
        starts = [_start(p.get("start")) for p in specs]
        periods = tuple(build_period(p, i, starts, vendor.tz, source, checked, evidence)
                        for i, p in enumerate(specs))
        note = "deprecated by the provider" if m.get("deprecated") else None
        models.append(ModelEntry(
            vendor=vid, model=m["id"], aliases=(), context_window=m.get("context_window"),
            max_output=None, capabilities=frozenset(m["capabilities"]), open_weights=False,
            params_b=None, region=vendor.region, currency="USD", periods=periods,
            note=note, catalog_ids=_EMPTY, source_file=MARKET_LABEL,
            _starts=tuple(s for s in starts if s is not None)))
    return models


def _start(text: str | None) -> datetime | None:
    # genai-prices start dates are UTC dates (its StartDateConstraint compares UTC dates)
    return None if text is None else datetime.combine(date.fromisoformat(text), time(0), UTC)


def _dec(p: Mapping[str, Any], key: str) -> Decimal | None:
    v = p.get(key)
    return None if v is None else Decimal(v)


def build_period(p: Mapping[str, Any], i: int, starts: list[datetime | None], tz: timezone,
                 source: str, checked: date, evidence: str, currency: str = "USD",
                 note: str | None = None) -> PricePeriod:
    """A period from plain data: prices as decimal strings per 1M tokens, optional
    ``tiers`` and ``windows``; ``starts`` are every period's (aware) starts."""
    start = starts[i]
    free = bool(p.get("free"))
    inp = _ZERO if free else Decimal(p["input_mtok"])
    cached, write = _dec(p, "cached_mtok"), _dec(p, "cache_write_mtok")
    out = _ZERO if free else _dec(p, "output_mtok")
    if free:
        cached = write = _ZERO
    following = starts[i + 1] if i + 1 < len(starts) else None
    if start is not None:
        pid = start.date().isoformat()
    else:
        pid = f"before-{following.date().isoformat()}" if following else "always"
    tiers = tuple(_tier(t) for t in p.get("tiers", ()))
    windows = tuple(_window(w) for w in p.get("windows", ()))
    return PricePeriod(
        id=pid, start=start, end=None, currency=currency, input_mtok=inp, cached_mtok=cached,
        cache_write_mtok=write, output_mtok=out, free=free, free_quota=None, tiers=tiers,
        windows=windows, source=source, checked=checked, evidence=evidence,
        start_evidence=None, first_seen=False,
        note=note or (None if free or out is not None else "output price not in genai-prices"),
        tz=tz,
        rates=Rates.per_mtok("free" if free else "", inp, cached, write, out))


def _tier(t: Mapping[str, Any]) -> PriceTier:
    n = int(t["above_input_tokens"])
    inp, cached = Decimal(t["input_mtok"]), _dec(t, "cached_mtok")
    write, out = _dec(t, "cache_write_mtok"), _dec(t, "output_mtok")
    size = f"{n // 1_000_000}m" if n % 1_000_000 == 0 else (
        f"{n // 1000}k" if n % 1000 == 0 else str(n))
    return PriceTier(n, inp, cached, write, out,
                     Rates.per_mtok(f"over-{size}", inp, cached, write, out))


def _window(w: Mapping[str, Any]) -> PriceWindow:
    inp, cached = Decimal(w["input_mtok"]), _dec(w, "cached_mtok")
    write, out = _dec(w, "cache_write_mtok"), _dec(w, "output_mtok")
    minutes: list[tuple[int, int]] = []
    for item in w["hours"]:
        lo = int(item[0:2]) * 60 + int(item[3:5])
        hi = int(item[6:8]) * 60 + int(item[9:11])
        minutes += [(lo, hi)] if hi > lo else [(lo, 24 * 60), (0, hi)]
    return PriceWindow(w["label"], tuple(w["hours"]), "daily", inp, cached, write, out,
                       Rates.per_mtok(w["label"], inp, cached, write, out), tuple(minutes),
                       frozenset(range(7)))
