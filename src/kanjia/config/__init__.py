"""Configuration: TOML validated once at start-up into frozen settings."""

from kanjia.config._load import load_settings
from kanjia.config._settings import (
    BudgetSettings,
    DeploymentSettings,
    ResponseCacheSettings,
    RouteSettings,
    ServerSettings,
    Settings,
    UnpricedPrice,
    VendorSettings,
)

__all__ = [
    "BudgetSettings",
    "DeploymentSettings",
    "ResponseCacheSettings",
    "RouteSettings",
    "ServerSettings",
    "Settings",
    "UnpricedPrice",
    "VendorSettings",
    "load_settings",
]
