"""Configuration: TOML validated once at start-up into frozen settings."""

from kanjia.config._load import load_settings
from kanjia.config._settings import (
    DeploymentSettings,
    ResponseCacheSettings,
    RouteSettings,
    ServerSettings,
    Settings,
    VendorSettings,
)

__all__ = [
    "DeploymentSettings",
    "ResponseCacheSettings",
    "RouteSettings",
    "ServerSettings",
    "Settings",
    "VendorSettings",
    "load_settings",
]
