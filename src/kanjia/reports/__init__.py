"""Reports: who benefits from the price war (issue 6).

Everything reads the usage ledger (through ``kanjia.ledger.query``) and the price catalog
(``kanjia.catalog``) and returns JSON-able dicts; the CLI (``kanjia report``,
``kanjia breakeven``), the HTML pages and the dashboard render the same dicts.

- ``spend_report`` / ``spend_by_day``: what the ledger recorded, grouped, in CNY and USD;
- ``savings_report``: the same traffic sent entirely to one baseline model;
- ``reprice_report``: the ledger at another date's prices, or on another vendor;
- ``breakeven``: self-hosting an open-weights model vs paying its API;
- ``billed_usage``: what one vendor should bill, per period and model (``kanjia reconcile``).
"""

from kanjia.ledger.query import GROUPS, BilledSums, billed_usage
from kanjia.reports._breakeven import api_model, breakeven, parse_amount
from kanjia.reports._chart import breakeven_chart, report_chart
from kanjia.reports._html import render_html
from kanjia.reports._reprice import reprice_report
from kanjia.reports._savings import find_model, savings_report
from kanjia.reports._spend import spend_by_day, spend_report
from kanjia.reports._traffic import ledger_traffic

__all__ = [
    "GROUPS",
    "BilledSums",
    "api_model",
    "billed_usage",
    "breakeven",
    "breakeven_chart",
    "find_model",
    "ledger_traffic",
    "parse_amount",
    "render_html",
    "report_chart",
    "reprice_report",
    "savings_report",
    "spend_by_day",
    "spend_report",
]
