"""Fixtures for the catalog tests: the packaged catalog, loaded once per session."""

from __future__ import annotations

import pytest

from kanjia.catalog import Catalog, load_catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()
