"""The catalog the CLI shows: kanjia's own data, the market, and the user's overrides."""

from __future__ import annotations

from kanjia.catalog import Catalog, default_overrides_path, load_catalog

__all__ = ["user_catalog"]


def user_catalog() -> Catalog:
    """The catalog with the market and the user's price overrides (if that file exists)."""
    path = default_overrides_path()
    return load_catalog(overrides=path if path.is_file() else None)
