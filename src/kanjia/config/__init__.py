"""Configuration: TOML validated once at start-up into frozen settings."""

from kanjia.config._load import load_settings
from kanjia.config._settings import (
    DeploymentSettings,
    RouteSettings,
    ServerSettings,
    Settings,
    VendorSettings,
)

__all__ = [
    "DeploymentSettings",
    "RouteSettings",
    "ServerSettings",
    "Settings",
    "VendorSettings",
    "load_settings",
]
