"""Optional parts of a gateway instance (ledger, keys, dashboard), wired from settings.

Each part registers itself here; build_app stays free of them so the core
request path can be built and tested alone.
"""

from __future__ import annotations

from kanjia.server.app import KanjiaApp

__all__ = ["wire_extras"]


def wire_extras(app: KanjiaApp) -> None:
    """Attach the ledger, keyed access and the dashboard when they are configured."""
    return None
