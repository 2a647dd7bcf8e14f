"""The dashboard of issue 6, "who benefits": spend over time, savings against a
baseline model, the price war, route decisions and fallbacks, budget use per key
and vendor health, on one page.

- ``Dashboard``: the gateway's ``/ui`` handler (master key or its session cookie);
- ``write_report``: the same page as one self-contained HTML file (``kanjia dashboard``);
- ``collect_dashboard``: the data both draw, as a JSON-able dict.

Charts are drawn in the browser by Chart.js, shipped in ``static/`` and inlined
into every page: nothing is fetched from the network, served or from ``file://``.
"""

from kanjia.dashboard._data import BASELINE, collect_dashboard
from kanjia.dashboard._handler import Dashboard
from kanjia.dashboard._health import live_breakers
from kanjia.dashboard._page import Assets, render_page
from kanjia.dashboard._period import Period
from kanjia.dashboard._report import write_report

__all__ = [
    "BASELINE",
    "Assets",
    "Dashboard",
    "Period",
    "collect_dashboard",
    "live_breakers",
    "render_page",
    "write_report",
]
