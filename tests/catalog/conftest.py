"""Fixtures for the catalog tests: the packaged catalog, loaded once per session."""

from __future__ import annotations

import pytest

from kanjia.catalog import Catalog, load_catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(autouse=True)
def _no_user_overrides(tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's own price-override file never leaks into a test."""
    path = tmp_path_factory.mktemp("overrides") / "price-overrides.toml"
    monkeypatch.setenv("KANJIA_PRICE_OVERRIDES", str(path))
