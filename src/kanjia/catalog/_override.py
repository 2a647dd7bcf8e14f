"""The user's price-override file: accepted price changes, each with its source and date.

``kanjia catalog import --apply`` writes accepted changes here (never into kanjia's
own sourced data); the catalog loads the file at start and validates it once. Each
entry adds a price period to a model from its ``start`` date on (kanjia's own data and
the market keep every earlier period), or prices a model the catalog does not know::

    [[prices]]
    model = "mistral/mistral-large-latest"
    start = 2026-12-06
    currency = "USD"
    input_mtok = "2"
    output_mtok = "6"
    source = "LiteLLM model_prices_and_context_window.json (mistral/mistral-large-latest)"
    checked = 2026-12-06
    evidence = "S"
    note = "was input 2.5, output 7.5 USD"

A malformed file is a ``ConfigError`` naming the first bad entry; nothing is applied.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kanjia.catalog._catalog import MarketSource
from kanjia.catalog._market import build_period
from kanjia.catalog._model import ModelEntry, VendorInfo
from kanjia.catalog._schema import Capability, Currency, Evidence, Mtok
from kanjia.errors import ConfigError

__all__ = ["OVERRIDES_ENV", "Override", "OverrideFile", "apply_overrides",
           "default_overrides_path", "price_overrides_path", "read_overrides",
           "write_overrides"]

OVERRIDES_ENV = "KANJIA_PRICE_OVERRIDES"
_HEADER = ("# kanjia price overrides: accepted price changes, each with its source and date.\n"
           "# Written by `kanjia catalog import --apply`; loaded by the catalog at start.\n"
           "# Prices per 1M tokens; each entry is in force from its start date (UTC).\n")


class Override(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: "vendor/model"
    model: str = Field(pattern=r"^[^/\s]+/\S+$")
    start: date
    currency: Currency
    input_mtok: Mtok
    cached_mtok: Mtok | None = None
    cache_write_mtok: Mtok | None = None
    output_mtok: Mtok
    context_window: int | None = Field(default=None, gt=0)
    #: for a model the catalog does not know (default: chat)
    capabilities: list[Capability] | None = None
    source: str = Field(min_length=3)
    checked: date
    evidence: Evidence
    note: str | None = None


class OverrideFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prices: list[Override] = Field(default_factory=list)


def default_overrides_path() -> Path:
    """$KANJIA_PRICE_OVERRIDES, else price-overrides.toml in the user's config dir."""
    env = os.environ.get(OVERRIDES_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kanjia" / "price-overrides.toml"


def price_overrides_path(configured: str | None) -> Path | None:
    """The override file a gateway loads: the configured one (which must exist), else
    the default one when it exists, else None."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ConfigError(f"price_overrides: {path} is not a file")
        return path
    default = default_overrides_path()
    return default if default.is_file() else None


def read_overrides(path: Path) -> OverrideFile:
    """The validated file; a missing file is empty. Errors name the first bad entry."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return OverrideFile()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_overrides(raw, str(path))


def parse_overrides(raw: Mapping[str, Any], label: str) -> OverrideFile:
    extra = sorted(set(raw) - {"prices"})
    if extra:
        raise ConfigError(f"{label}: unknown key {extra[0]!r} (expected [[prices]] entries)")
    items = raw.get("prices", [])
    if not isinstance(items, list):
        raise ConfigError(f"{label}: prices must be a list of [[prices]] entries")
    entries: list[Override] = []
    for i, item in enumerate(items):
        try:
            entries.append(Override.model_validate(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "(entry)"
            name = item.get("model") if isinstance(item, dict) else None
            raise ConfigError(f"{label}: prices[{i}]" + (f" ({name})" if name else "")
                              + f": field {field}: {err['msg']}") from None
    return OverrideFile(prices=entries)


def apply_overrides(file: OverrideFile, models: Sequence[ModelEntry], market: MarketSource,
                    vendors: Mapping[str, VendorInfo], label: str = "price overrides",
                    ) -> tuple[list[ModelEntry], MarketSource]:
    """``models`` and the market with the overrides applied (checked now, all or none)."""
    if not file.prices:
        return list(models), market
    own = {m.key.lower(): m for m in models}
    for m in models:
        for alias in m.aliases:
            own.setdefault(f"{m.vendor}/{alias}".lower(), m)
    needs_market = any(e.model.lower() not in own for e in file.prices)
    market_list = list(market() if callable(market) else market) if needs_market else []
    theirs = {m.key.lower(): m for m in market_list}
    changed: dict[str, ModelEntry] = {}       # canonical key -> entry with overrides
    order = sorted(enumerate(file.prices), key=lambda p: (p[1].model.lower(), p[1].start))
    for i, e in order:
        vendor_id = e.model.split("/", 1)[0]
        if vendor_id not in vendors:
            raise ConfigError(f"{label}: prices[{i}] ({e.model}): unknown vendor {vendor_id!r}; "
                              f"known: {', '.join(sorted(vendors))}")
        base = own.get(e.model.lower()) or theirs.get(e.model.lower())
        key = base.key.lower() if base is not None else e.model.lower()
        try:
            changed[key] = _with(changed.get(key) or base, e, vendors[vendor_id])
        except ValueError as exc:
            raise ConfigError(f"{label}: prices[{i}] ({e.model}): {exc}") from None
    new_own = [changed.pop(m.key.lower(), m) for m in models]
    if not needs_market:
        return new_own, market
    new_market = [changed.pop(m.key.lower(), m) for m in market_list]
    return new_own, new_market + list(changed.values())


def _with(entry: ModelEntry | None, e: Override, vendor: VendorInfo) -> ModelEntry:
    start = datetime.combine(e.start, time(0), UTC)
    data: dict[str, Any] = {k: str(v) for k, v in (
        ("input_mtok", e.input_mtok), ("cached_mtok", e.cached_mtok),
        ("cache_write_mtok", e.cache_write_mtok), ("output_mtok", e.output_mtok))
        if v is not None}
    if entry is None:
        period = build_period(data, 0, [start], vendor.tz, e.source, e.checked, e.evidence,
                              e.currency, e.note)
        return ModelEntry(
            vendor=vendor.id, model=e.model.split("/", 1)[1], aliases=(),
            context_window=e.context_window, max_output=None,
            capabilities=frozenset(e.capabilities or ["chat"]), open_weights=False,
            params_b=None, region=vendor.region, currency=e.currency, periods=(period,),
            note="priced by the user's override file", source_file="price overrides",
            _starts=(start,))
    last = entry.periods[-1] if entry.periods else None
    if last is not None and last.start is not None and start <= last.start:
        raise ValueError(f"start {e.start} is not after the model's last period "
                         f"({last.id}); an override adds a new period")
    starts = [p.start for p in entry.periods] + [start]
    period = build_period(data, len(starts) - 1, starts, vendor.tz, e.source, e.checked,
                          e.evidence, e.currency, e.note)
    return replace(entry, periods=(*entry.periods, period),
                   context_window=e.context_window or entry.context_window,
                   _starts=tuple(s for s in starts if s is not None))


def write_overrides(path: Path, entries: Iterable[Override]) -> int:
    """Append ``entries`` to the file (created with a header); the whole file is
    validated before it replaces the old one. Returns how many were written."""
    old = read_overrides(path)
    new = list(entries)
    merged = OverrideFile(prices=[*old.prices, *new])
    text = _HEADER + "".join(_entry_toml(e) for e in merged.prices)
    parse_overrides(tomllib.loads(text), str(path))   # what we write reads back
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return len(new)


def _entry_toml(e: Override) -> str:
    lines = ["", "[[prices]]", f"model = {_s(e.model)}", f"start = {e.start.isoformat()}",
             f"currency = {_s(e.currency)}"]
    for name in ("input_mtok", "cached_mtok", "cache_write_mtok", "output_mtok"):
        value: Decimal | None = getattr(e, name)
        if value is not None:
            lines.append(f"{name} = {_s(format(value.normalize(), 'f'))}")
    if e.context_window is not None:
        lines.append(f"context_window = {e.context_window}")
    if e.capabilities is not None:
        lines.append(f"capabilities = [{', '.join(_s(c) for c in e.capabilities)}]")
    lines += [f"source = {_s(e.source)}", f"checked = {e.checked.isoformat()}",
              f"evidence = {_s(e.evidence)}"]
    if e.note:
        lines.append(f"note = {_s(e.note)}")
    return "\n".join(lines) + "\n"


def _s(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
