"""The loaded catalog: every model of every vendor, looked up by key, name or alias."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from kanjia.catalog._fx import FxTable
from kanjia.catalog._model import ModelEntry, VendorInfo

__all__ = ["Catalog"]


class Catalog:
    """Read-only after construction; the caller keeps it (nothing is cached globally)."""

    __slots__ = ("_by_key", "_by_name", "fx", "models", "vendors")

    def __init__(self, models: Iterable[ModelEntry], vendors: Mapping[str, VendorInfo],
                 fx: FxTable) -> None:
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

    def get(self, vendor: str, model: str) -> ModelEntry | None:
        """The model ``model`` (id or alias, any case) of ``vendor``, or None."""
        return self._by_key.get(f"{vendor}/{model}".lower())

    def find(self, name: str) -> list[ModelEntry]:
        """Every model that ``name`` can mean: "vendor/model", a bare id, an alias, or
        another catalog's id. The exact "vendor/model" match comes first."""
        found: list[ModelEntry] = []
        vendor, sep, rest = name.partition("/")
        if sep:
            exact = self.get(vendor, rest)
            if exact is not None:
                found.append(exact)
        for entry in self._by_name.get(name.lower(), ()):
            if entry not in found:
                found.append(entry)
        return found

    def by_vendor(self, vendor: str) -> tuple[ModelEntry, ...]:
        return tuple(m for m in self.models if m.vendor == vendor)

    def __len__(self) -> int:
        return len(self.models)

    def __repr__(self) -> str:
        return f"<Catalog {len(self.models)} models, {len(self.vendors)} vendors>"
