"""Load and validate the price files into a ``Catalog``.

``load_catalog()`` reads the packaged ``catalog/data/*.toml`` (plus any extra
directories), validates each file against ``_schema`` and builds the frozen runtime
types. Any problem raises ``ConfigError`` naming the file, the model and the field.
Nothing is cached at module level: callers keep the ``Catalog`` they get.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timezone
from decimal import Decimal
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from kanjia.catalog._catalog import Catalog, MarketSource
from kanjia.catalog._fx import FxRate, FxTable
from kanjia.catalog._market import load_market
from kanjia.catalog._model import (
    CacheRules,
    ModelEntry,
    PricePeriod,
    PriceTier,
    PriceWindow,
    Rates,
    VendorInfo,
    parse_offset,
)
from kanjia.catalog._schema import (
    BatchSpec,
    FxFile,
    ModelSpec,
    PeriodSpec,
    TierSpec,
    VendorFile,
    WindowSpec,
)
from kanjia.errors import ConfigError

__all__ = ["load_catalog"]

FX_FILE = "fx.toml"
_DAYS = {"daily": frozenset(range(7)), "weekdays": frozenset(range(5)),
         "weekends": frozenset({5, 6})}
_DEFAULT_TZ = {"cn": "+08:00"}
_M = TypeVar("_M", bound=BaseModel)


def load_catalog(extra_dirs: Sequence[Path] = (),
                 fx_overrides: Mapping[date, Decimal] | Mapping[str, Decimal] | None = None,
                 *, market: bool = True, overrides: Path | None = None,
                 ) -> Catalog:
    """The packaged catalog plus vendor files from ``extra_dirs``.

    ``fx_overrides`` maps a date (or ISO date) to CNY per USD and wins over the
    packaged exchange-rate table. An extra file for a vendor that already exists
    adds models to it; a model defined twice is an error. ``market`` adds the rest of
    the market (the genai-prices snapshot, see ``_market``) behind kanjia's own data.
    ``overrides`` is a user price-override file (``kanjia catalog import --apply``
    writes one), validated here; its prices start on their dates and win from then.
    """
    data = files("kanjia.catalog") / "data"
    sources: list[tuple[str, Traversable]] = [
        (f"catalog/data/{item.name}", item) for item in _toml_files(data)]
    for directory in extra_dirs:
        if not Path(directory).is_dir():
            raise ConfigError(f"{directory}: not a directory")
        sources += [(str(p), p) for p in sorted(Path(directory).glob("*.toml"))
                    if p.name != FX_FILE]
    vendors: dict[str, VendorInfo] = {}
    models: list[ModelEntry] = []
    seen: dict[str, str] = {}
    for label, item in sources:
        if label.startswith("catalog/data/") and item.name == FX_FILE:
            continue
        vendor_id = item.name.removesuffix(".toml")
        spec = _validate(VendorFile, _read(label, item), label)
        vendor = _vendor(vendor_id, spec)
        known = vendors.setdefault(vendor_id, vendor)
        if known is not vendor and (known.region, known.currency) != (vendor.region,
                                                                        vendor.currency):
            raise ConfigError(f"{label}: vendor {vendor_id!r} is already defined with another "
                              "region or currency")
        for m in spec.models:
            entry = _entry(known, m, label, spec.vendor.batch)
            for name in (entry.model, *entry.aliases):
                key = f"{vendor_id}/{name}".lower()
                if key in seen:
                    raise ConfigError(f"{label}: model {m.id!r}: field id/aliases: {name!r} is "
                                      f"already used by {seen[key]}")
                seen[key] = f"{entry.key} ({label})"
            models.append(entry)
    _check_families(models)
    fx = _load_fx(data / FX_FILE)
    if fx_overrides:
        fx = fx.with_overrides(fx_overrides)
    market_models: MarketSource = ()
    if market:
        new_vendors, market_models = load_market(vendors)
        vendors.update(new_vendors)
    if overrides is not None:
        from kanjia.catalog._override import apply_overrides, read_overrides

        models, market_models = apply_overrides(read_overrides(overrides), models,
                                                market_models, vendors)
    return Catalog(models, vendors, fx, market_models)


def _toml_files(folder: Traversable) -> Iterator[Traversable]:
    yield from sorted((i for i in folder.iterdir() if i.name.endswith(".toml")),
                      key=lambda i: i.name)


def _read(label: str, item: Traversable) -> dict[str, Any]:
    try:
        return tomllib.loads(item.read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: invalid TOML: {exc}") from None


def _validate(schema: type[_M], raw: dict[str, Any], label: str) -> _M:
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{label}: " + "; ".join(
            _describe(err["loc"], err["msg"], raw) for err in exc.errors())) from None


def _describe(loc: tuple[int | str, ...], msg: str, raw: dict[str, Any]) -> str:
    """'model 'x': field periods[2].input_mtok: <msg>' from a pydantic error location."""
    where = ""
    rest = loc
    if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
        models = raw.get("models")
        mid: object = f"#{loc[1]}"
        if isinstance(models, list) and loc[1] < len(models) and isinstance(models[loc[1]], dict):
            mid = models[loc[1]].get("id", mid)
        where = f"model {mid!r}: "
        rest = loc[2:]
    path = ""
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if not path:
        path = "(model)" if where else "(file)"
    return f"{where}field {path}: {msg}"


def _vendor(vendor_id: str, spec: VendorFile) -> VendorInfo:
    v = spec.vendor
    offset = v.timezone or _DEFAULT_TZ.get(v.region, "+00:00")
    c = v.cache
    cache = None if c is None else CacheRules(
        mode=c.mode, min_tokens=c.min_tokens, unit=c.unit, ttl_s=c.ttl_s,
        write_premium=c.write_premium, source=c.source)
    return VendorInfo(id=vendor_id, name=v.name, region=v.region, currency=v.currency,
                      pricing_urls=tuple(v.pricing_urls), tz=parse_offset(offset), note=v.note,
                      cache=cache)


def _entry(vendor: VendorInfo, m: ModelSpec, label: str,
           batch: BatchSpec | None = None) -> ModelEntry:
    def fail(field: str, msg: str) -> ConfigError:
        return ConfigError(f"{label}: model {m.id!r}: field {field}: {msg}")

    starts = [_instant(p.start, vendor.tz) for p in m.periods]
    ends = [_instant(p.end, vendor.tz) for p in m.periods]
    for i in range(len(m.periods)):
        s, e = starts[i], ends[i]
        if i and s is not None and (prev := starts[i - 1]) is not None and s <= prev:
            raise fail(f"periods[{i}].start", "periods must be in increasing start order")
        if e is not None and s is not None and e <= s:
            raise fail(f"periods[{i}].end", "end must be after start")
        if e is not None and i + 1 < len(starts) and (nxt := starts[i + 1]) is not None \
                and e > nxt:
            raise fail(f"periods[{i}].end", "end is after the next period's start")
    periods = tuple(
        _period(p, i, starts, ends[i], vendor) for i, p in enumerate(m.periods))
    return ModelEntry(
        vendor=vendor.id, model=m.id, aliases=tuple(m.aliases),
        context_window=m.context_window, max_output=m.max_output,
        capabilities=frozenset(m.capabilities), open_weights=m.open_weights,
        params_b=m.params_b, region=vendor.region, currency=vendor.currency,
        periods=periods, family=m.family, note=_oneline(m.note),
        catalog_ids=MappingProxyType({str(k): v for k, v in m.ids.items()}), source_file=label,
        differs=MappingProxyType({str(k): " ".join(v.split()) for k, v in m.differs.items()}),
        _starts=tuple(s for s in starts if s is not None),
        **_batch(batch, m.id))


def _batch(batch: BatchSpec | None, model: str) -> dict[str, Any]:
    if batch is None or (batch.models and model not in batch.models):
        return {}
    return {"batch_factor": batch.factor,
            "batch_source": f"{batch.source} (checked {batch.checked.isoformat()})"}


def _oneline(text: str | None) -> str | None:
    return None if text is None else " ".join(text.split())


def _instant(value: datetime | date | None, tz: timezone) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0), tz)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _period_id(start: datetime | None, following: datetime | None, tz: timezone) -> str:
    if start is None:
        return f"before-{following.astimezone(tz).date().isoformat()}" if following else "always"
    local = start.astimezone(tz)
    if local.time() == time(0):
        return local.date().isoformat()
    return local.strftime("%Y-%m-%dT%H:%M")


def _period(p: PeriodSpec, i: int, starts: list[datetime | None], end: datetime | None,
            vendor: VendorInfo) -> PricePeriod:
    start = starts[i]
    following = starts[i + 1] if i + 1 < len(starts) else None
    zero = Decimal(0)
    inp = zero if p.free else (p.input_mtok or zero)
    out = zero if p.free else p.output_mtok
    cached = zero if p.free else p.cached_mtok
    write = zero if p.free else p.cache_write_mtok
    write_1h = zero if p.free else p.cache_write_1h_mtok
    return PricePeriod(
        id=_period_id(start, following, vendor.tz), start=start, end=end,
        currency=p.currency or vendor.currency,
        input_mtok=inp, cached_mtok=cached, cache_write_mtok=write, output_mtok=out,
        free=p.free, free_quota=p.free_quota,
        tiers=tuple(_tier(t) for t in p.tiers),
        windows=tuple(_window(w) for w in p.windows),
        source=p.source, checked=p.checked, evidence=p.evidence,
        start_evidence=p.start_evidence, first_seen=p.first_seen, note=_oneline(p.note),
        tz=vendor.tz,
        # the base prices carry no label: "+offpeak" in a period id means the off-peak
        # window applied, never that the base price did (base_label is for display)
        rates=Rates.per_mtok("free" if p.free else "", inp, cached, write, out, write_1h),
        cache_write_1h_mtok=write_1h,
        base_label=p.base_label or "")


def _tier(t: TierSpec) -> PriceTier:
    assert t.input_mtok is not None
    n = t.above_input_tokens
    size = f"{n // 1_000_000}m" if n % 1_000_000 == 0 else (
        f"{n // 1000}k" if n % 1000 == 0 else str(n))
    return PriceTier(n, t.input_mtok, t.cached_mtok, t.cache_write_mtok, t.output_mtok,
                     Rates.per_mtok(f"over-{size}", t.input_mtok, t.cached_mtok,
                                    t.cache_write_mtok, t.output_mtok, t.cache_write_1h_mtok),
                     t.cache_write_1h_mtok)


def _window(w: WindowSpec) -> PriceWindow:
    assert w.input_mtok is not None
    minutes: list[tuple[int, int]] = []
    for item in w.hours:
        lo = int(item[0:2]) * 60 + int(item[3:5])
        hi = int(item[6:8]) * 60 + int(item[9:11])
        minutes += [(lo, hi)] if hi > lo else [(lo, 24 * 60), (0, hi)]
    return PriceWindow(w.label, tuple(w.hours), w.days, w.input_mtok, w.cached_mtok,
                       w.cache_write_mtok, w.output_mtok,
                       Rates.per_mtok(w.label, w.input_mtok, w.cached_mtok,
                                      w.cache_write_mtok, w.output_mtok,
                                      w.cache_write_1h_mtok),
                       tuple(minutes), _DAYS[w.days], w.cache_write_1h_mtok)


def _check_families(models: list[ModelEntry]) -> None:
    owner: dict[str, ModelEntry] = {}
    for m in models:
        if m.family is None:
            continue
        if m.family in owner:
            raise ConfigError(f"{m.source_file}: model {m.model!r}: field family: "
                              f"{m.family!r} is already drawn by {owner[m.family].key}")
        owner[m.family] = m


def _load_fx(item: Traversable) -> FxTable:
    label = f"catalog/data/{FX_FILE}"
    spec = _validate(FxFile, _read(label, item), label)
    return FxTable(FxRate(r.date, r.cny_per_usd, r.source, r.evidence) for r in spec.rates)
