"""What ``kanjia demo`` prints at the end: cost per vendor and model, the request kinds
sent, each routed request's decision and why, the savings by lever, and what to try
next."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import click

from kanjia.ledger.record import CallRecord

if TYPE_CHECKING:
    from kanjia.server.app import KanjiaApp

__all__ = ["BASELINE", "Sent", "print_summary"]

#: what the demo's savings are measured against
BASELINE = "openai/gpt-4o"

_WHY = {
    "cheapest": "the cheapest adequate candidate at today's price",
    "fastest": "the fastest candidate by observed latency",
    "weighted": "drawn by the route's weights",
    "ordered": "the first healthy candidate in the route's order",
    "quality": "the cheapest candidate the quality router expects to answer well",
    "cascade": "the cascade's judge accepted this answer",
}


@dataclass
class Sent:
    """What the demo's client sent: request kinds, and the headers of routed answers."""

    kinds: Counter[str] = field(default_factory=Counter)
    routed: list[dict[str, str]] = field(default_factory=list)

    def add(self, kind: str) -> None:
        self.kinds[kind] += 1

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


def print_summary(records: list[CallRecord], sent: Sent, app: KanjiaApp, ledger: str,
                  elapsed: float, report_db: str | None) -> None:
    _cost_table(records, app.services.catalog.fx)
    click.echo(f"\n{sent.total} requests through kanjia in {elapsed:.1f} s:")
    for kind, n in sorted(sent.kinds.items(), key=lambda kv: (-kv[1], kv[0])):
        click.echo(f"  {n:>3}  {kind}")
    _routes(records, sent, app)
    if report_db is not None:
        _savings(report_db, app)
    click.echo("\nnext:")
    db = report_db or ledger
    for cmd, what in ((f"kanjia report --db {db} --by vendor", "spend in CNY and USD"),
                      (f"kanjia report --db {db} --baseline", "savings, by lever"),
                      (f"kanjia dashboard --db {db} --out report.html", "the charts, one file"),
                      ("kanjia demo --ui", "the same, then the live dashboard"),
                      ("kanjia route explain cheap-chat --prompt-tokens 3000 --max-tokens 500",
                       "a decision")):
        click.echo(f"  {cmd}\n      {what}")


def _cost_table(records: list[CallRecord], fx: Any) -> None:
    rows: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "in": 0, "out": 0, "cny": Decimal(0), "usd": Decimal(0), "err": 0,
                 "priced": False})
    today = datetime.now(UTC).date()
    for r in records:
        row = rows[(r.vendor or "-", r.model or r.requested_model)]
        row["n"] += 1
        row["priced"] = row["priced"] or r.price_period not in (None, "unpriced")
        row["err"] += r.status >= 400
        row["in"] += r.input_tokens
        row["out"] += r.output_tokens
        row["cny"] += fx.convert(r.cost, r.currency, "CNY", today)
        row["usd"] += fx.convert(r.cost, r.currency, "USD", today)
    width = max([len("model"), *(len(m) for _, m in rows)])
    click.echo(f"\n{'vendor':<11} {'model':<{width}} {'req':>4} {'err':>3} {'in tok':>7} "
               f"{'out tok':>7} {'cost CNY':>12} {'cost USD':>12}")
    total = {"n": 0, "in": 0, "out": 0, "cny": Decimal(0), "usd": Decimal(0), "err": 0}
    for (vendor, model), row in sorted(rows.items()):
        cny, usd = ((f"{row['cny']:>12.6f}", f"{row['usd']:>12.6f}") if row["priced"]
                    else (f"{'unpriced':>12}", f"{'unpriced':>12}"))
        click.echo(f"{vendor:<11} {model:<{width}} {row['n']:>4} {row['err']:>3} "
                   f"{row['in']:>7} {row['out']:>7} {cny} {usd}")
        for k in total:
            total[k] += row[k]
    click.echo(f"{'total':<{width + 12}} {total['n']:>4} {total['err']:>3} {total['in']:>7} "
               f"{total['out']:>7} {total['cny']:>12.6f} {total['usd']:>12.6f}")


def _routes(records: list[CallRecord], sent: Sent, app: KanjiaApp) -> None:
    if not sent.routed:
        return
    by_id = {r.request_id: r for r in records}
    routes = app.services.settings.routes
    click.echo("\nroute decisions:")
    for headers in sent.routed:
        route = headers.get("x-kanjia-route", "?")
        chosen = f"{headers.get('x-kanjia-vendor')}/{headers.get('x-kanjia-model')}"
        candidates = [c for c in headers.get("x-kanjia-candidates", "").split(",") if c]
        rec = by_id.get(headers.get("x-kanjia-request-id", ""))
        tried = [a.rsplit("@", 1)[0] for a in (rec.attempts if rec else [])]
        settings = routes.get(route)
        why = _WHY.get(settings.objective if settings else "", "chosen by the route")
        if len(tried) > 1:
            why = f"fallback: {', '.join(tried[:-1])} failed, so the next candidate answered"
        others = [c for c in candidates if c != chosen][:3]
        tail = f" (also fit: {', '.join(others)})" if others else ""
        cost = headers.get("x-kanjia-cost", "")
        click.echo(f"  {route:<11} -> {chosen}  {cost}: {why}{tail}")


def _savings(db_url: str, app: KanjiaApp) -> None:
    from kanjia.ledger.store import migrate, open_database
    from kanjia.reports import savings_report

    async def run() -> dict[str, Any]:
        db = open_database(db_url)
        await db.connect()
        try:
            await migrate(db)
            return await savings_report(db, app.services.catalog, baseline=BASELINE,
                                        currency="CNY")
        finally:
            await db.close()

    try:
        r = asyncio.run(run())
    except (OSError, ValueError) as exc:
        click.echo(f"\nsavings: the ledger could not be read ({exc})")
        return
    s = r["saving"]
    share = f"{s['share']:.1%}" if s["share"] is not None else "-"
    click.echo(f"\nsavings against {BASELINE} (the same tokens on it): paid "
               f"{r['total']['amount']:.6f} CNY instead of {r['baseline_total']['amount']:.6f}"
               f" CNY, saved {s['amount']:.6f} CNY ({share})")
    for lever in r["levers"]:
        who = ("routing: requests sent to a route" if lever["lever"] == "routing"
               else "direct: requests that named their model")
        ls = lever["saving"]
        click.echo(f"  {who}: {lever['requests']} requests, saved {ls['amount']:.6f} CNY"
                   + (f" ({ls['share']:.1%})" if ls["share"] is not None else ""))
