"""The loaded catalog: every model of every vendor, looked up by key, name or alias.

Two kinds of model: kanjia's own sourced data (``models``: CNY history, off-peak, cache,
tiers, each period with its source) and the rest of the market (``market``: models
only the genai-prices snapshot prices, each period marked with that source). Where
both have a model, kanjia's own data is the authority and the market entry is dropped.

The market (about 2,000 models) is built on first use, so a gateway that only routes
to kanjia's own models never pays for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from kanjia.catalog._fx import FxTable
from kanjia.catalog._model import ModelEntry, VendorInfo

__all__ = ["Catalog", "MarketSource"]

MarketSource = Iterable[ModelEntry] | Callable[[], Iterable[ModelEntry]]


class _Market:
    """The market's models and their indexes, built once from a loader."""

    __slots__ = ("by_key", "by_name", "models")

    def __init__(self, entries: Iterable[ModelEntry], own: Mapping[str, ModelEntry]) -> None:
        kept: list[ModelEntry] = []
        by_key: dict[str, ModelEntry] = {}
        by_name: dict[str, list[ModelEntry]] = {}
        for entry in entries:
            key = entry.key.lower()
            if key in own or key in by_key:
                continue                     # kanjia's own data is the authority
            by_key[key] = entry
            by_name.setdefault(entry.model.lower(), []).append(entry)
            kept.append(entry)
        self.models = tuple(kept)
        self.by_key = by_key
        self.by_name = {k: tuple(v) for k, v in by_name.items()}


class Catalog:
    """Read-only after construction; the caller keeps it (nothing is cached globally)."""

    __slots__ = ("_by_key", "_by_name", "_lock", "_market", "_market_source", "fx", "models",
                 "vendors")

    def __init__(self, models: Iterable[ModelEntry], vendors: Mapping[str, VendorInfo],
                 fx: FxTable, market: MarketSource = ()) -> None:
        #: kanjia's own sourced models (what the router builds its targets from)
        self.models: tuple[ModelEntry, ...] = tuple(models)
        self.vendors: Mapping[str, VendorInfo] = MappingProxyType(dict(vendors))
        self.fx = fx
        by_key: dict[str, ModelEntry] = {}
        by_name: dict[str, list[ModelEntry]] = {}
        for entry in self.models:
            names = (entry.model, *entry.aliases)
            for name in names:
                by_key.setdefault(f"{entry.vendor}/{name}".lower(), entry)
            for name in (*names, *entry.catalog_ids.values()):
                bucket = by_name.setdefault(name.lower(), [])
                if entry not in bucket:
                    bucket.append(entry)
        self._by_key = by_key
        self._by_name = {k: tuple(v) for k, v in by_name.items()}
        self._market_source = market
        self._market: _Market | None = None
        self._lock = threading.Lock()

    def _the_market(self) -> _Market:
        market = self._market
        if market is None:
            with self._lock:
                market = self._market
                if market is None:
                    source = self._market_source
                    market = _Market(source() if callable(source) else source, self._by_key)
                    self._market = market
        return market

    @property
    def market(self) -> tuple[ModelEntry, ...]:
        """The rest of the market: models only genai-prices (or a user override) prices."""
        return self._the_market().models

    @property
    def every(self) -> tuple[ModelEntry, ...]:
        """Every model: kanjia's own first, then the market's."""
        return self.models + self.market

    def get(self, vendor: str, model: str) -> ModelEntry | None:
        """The model ``model`` (id or alias, any case) of ``vendor``, or None."""
        key = f"{vendor}/{model}".lower()
        own = self._by_key.get(key)
        return own if own is not None else self._the_market().by_key.get(key)

    def find(self, name: str) -> list[ModelEntry]:
        """Every model that ``name`` can mean: "vendor/model", a bare id, an alias, or
        another catalog's id. The exact "vendor/model" match comes first; a bare name
        kanjia's own data knows never means a market model."""
        found: list[ModelEntry] = []
        vendor, sep, rest = name.partition("/")
        if sep:
            exact = self.get(vendor, rest)
            if exact is not None:
                found.append(exact)
        own = self._by_name.get(name.lower(), ())
        for entry in own or self._the_market().by_name.get(name.lower(), ()):
            if entry not in found:
                found.append(entry)
        return found

    def by_vendor(self, vendor: str) -> tuple[ModelEntry, ...]:
        """``vendor``'s models in kanjia's own sourced data."""
        return tuple(m for m in self.models if m.vendor == vendor)

    def every_of(self, vendor: str) -> tuple[ModelEntry, ...]:
        """``vendor``'s models, kanjia's own and the market's."""
        return tuple(m for m in self.every if m.vendor == vendor)

    def __len__(self) -> int:
        return len(self.models)

    def __repr__(self) -> str:
        market = "market not loaded" if self._market is None else \
            f"{len(self._market.models)} market"
        return f"<Catalog {len(self.models)} models + {market}, {len(self.vendors)} vendors>"
