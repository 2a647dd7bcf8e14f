"""The dashboard as one self-contained HTML document: markup, styles, Chart.js, the
page script and the data, all inline, so the same bytes work served at ``/ui`` and
opened from ``file://`` with no network.

Data goes in a ``<script type="application/json">`` block with ``<``, ``>`` and ``&``
escaped, and the page script writes it into the DOM with ``textContent`` only, so
model names or key names in the ledger can never become markup.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import orjson

__all__ = ["Assets", "embed_json", "render_login", "render_page"]

#: the Content-Security-Policy of a report opened from a file: nothing may load
_FILE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
             "img-src data:; form-action 'none'; base-uri 'none'")


@dataclass(frozen=True, slots=True)
class Assets:
    chart_js: str
    page_js: str
    css: str

    @classmethod
    def load(cls) -> Assets:
        static = files("kanjia.dashboard") / "static"
        chart = static.joinpath("chart.umd.min.js").read_text(encoding="utf-8")
        # the source map is not shipped: drop the comment that points at it
        chart = "\n".join(line for line in chart.splitlines()
                          if not line.startswith("//# sourceMappingURL="))
        return cls(chart, static.joinpath("dashboard.js").read_text(encoding="utf-8"),
                   static.joinpath("dashboard.css").read_text(encoding="utf-8"))


def embed_json(data: Any) -> str:
    """JSON safe to place inside a ``<script>`` element."""
    text = orjson.dumps(data).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _attr(nonce: str | None) -> str:
    return f' nonce="{html.escape(nonce)}"' if nonce else ""


def _head(title: str, assets: Assets, nonce: str | None) -> str:
    csp = "" if nonce else f'<meta http-equiv="Content-Security-Policy" content="{_FILE_CSP}">'
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<meta name='referrer' content='no-referrer'>{csp}<link rel='icon' href='data:,'>"
            f"<title>{html.escape(title)}</title><style{_attr(nonce)}>{assets.css}</style>"
            "</head>")


_PANELS = (
    ("spend", "Spend over time", "What the vendors billed, per UTC day, in the reporting "
     "currency.", True),
    ("savings", "Savings against the baseline", "What the same tokens would have cost on "
     "the baseline model, at the price in force on each day.", False),
    ("routes", "Route decisions and fallbacks", "Where each route sent its requests, how "
     "often the first choice failed over, and the client API (chat, messages, responses, "
     "...) requests came in on.", False),
    ("prices", "The price war", "List price per 1M tokens (blended 3 input : 1 output, log "
     "scale) from the catalog, one colour per vendor, one dash per model; labels mark cuts "
     "of half or more. Thick lines: mainland-China vendors; the green band is free.", True),
    ("budgets", "Budget use per key", "Each budget's current window (day, month or total), "
     "spent from the ledger.", False),
    ("health", "Vendor health", "Attempts per vendor from the ledger (fallback chains "
     "included), and the gateway's live circuit breakers.", False),
)

#: the spend panel's title and blurb per bar width (``_reports.bucket_for``)
_SPEND_BY = {
    "day": ("Spend over time, per day", "What the vendors billed, per UTC day, in the "
            "reporting currency."),
    "week": ("Spend over time, per week", "What the vendors billed, per UTC week (Monday "
             "to Sunday: the window is over 90 days long), in the reporting currency."),
    "month": ("Spend over time, per month", "What the vendors billed, per UTC calendar "
              "month (the window is over a year long), in the reporting currency."),
}


def _panel(pid: str, title: str, blurb: str, wide: bool) -> str:
    cls = "panel wide" if wide else "panel"
    return (f"<section class='{cls}' id='panel-{pid}'><h2>{html.escape(title)}</h2>"
            f"<p class='blurb'>{html.escape(blurb)}</p><div class='body'></div></section>")


def _panels(data: dict[str, Any]) -> str:
    bucket = data.get("spend", {}).get("bucket", "day")
    out = []
    for pid, title, blurb, wide in _PANELS:
        if pid == "spend" and bucket in _SPEND_BY:
            title, blurb = _SPEND_BY[bucket]
        out.append(_panel(pid, title, blurb, wide))
    return "".join(out)


def render_page(data: dict[str, Any], assets: Assets, *, nonce: str | None = None) -> str:
    """The whole dashboard. ``nonce`` (served pages) tags the inline styles and
    scripts for the response's CSP header; without it the page carries a CSP that
    forbids every load (a report file)."""
    live = bool(data.get("meta", {}).get("live"))
    controls = ""
    if live:
        controls = ("<form class='controls' method='get' action='/ui'>"
                    "<label>since <input type='date' name='since' id='since'></label>"
                    "<label>currency <select name='currency' id='currency'>"
                    "<option>CNY</option><option>USD</option></select></label>"
                    "<button type='submit'>show</button></form>"
                    "<form class='controls' method='post' action='/ui/logout'>"
                    "<button type='submit'>log out</button></form>")
    panels = _panels(data)
    return (_head("kanjia: who benefits", assets, nonce) +
            "<body><header><div><h1>kanjia <span>砍价</span> — who benefits</h1>"
            f"<p id='subtitle'></p></div>{controls}</header>"
            "<section id='kpis' class='kpis'></section>"
            f"<main class='grid'>{panels}</main>"
            "<footer>Charts: Chart.js 4.6.1 (MIT), shipped with kanjia. "
            "Amounts are vendor list-price cost unless marked as charge.</footer>"
            f"<script type='application/json' id='kanjia-data'>{embed_json(data)}</script>"
            f"<script{_attr(nonce)}>{assets.chart_js}</script>"
            f"<script{_attr(nonce)}>{assets.page_js}</script></body></html>")


def render_login(assets: Assets, *, nonce: str | None, message: str | None = None,
                 enabled: bool = True) -> str:
    """The sign-in form (the answer to an unauthenticated ``/ui``): no data at all."""
    note = f"<p class='error'>{html.escape(message)}</p>" if message else ""
    form = ("<form method='post' action='/ui/login' class='login'>"
            "<label>Admin key <input type='password' name='key' autocomplete='current-password'"
            " required autofocus></label><button type='submit'>Sign in</button></form>"
            if enabled else "")
    return (_head("kanjia: sign in", assets, nonce) +
            "<body class='login-page'><main><h1>kanjia <span>砍价</span></h1>"
            f"<p>The dashboard needs the gateway's admin key.</p>{note}{form}</main>"
            "</body></html>")
