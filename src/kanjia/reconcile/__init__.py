"""Reconciling the ledger with a vendor's own usage record (``kanjia reconcile``).

    export = load_export(Path("usage.json"))                 # format detected
    export = load_export(Path("bill.csv"), "csv", mapping=parse_map("date=Date,..."))
    result = await reconcile(db, "openai", [export], tolerance=Tolerance())

Formats: OpenAI's organization usage and costs API pages (``openai-usage``,
``openai-costs``), a CSV read through a column mapping (``csv``), and Alibaba Model
Studio billing items (``bailian``). ``result["differences"]`` lists every figure
(requests, input/cached/output tokens, cost) per period and model where the ledger
and the export disagree beyond the tolerance.
"""

from kanjia.reconcile._compare import Convert, Tolerance, parse_tolerance, reconcile
from kanjia.reconcile._csv import MAP_FIELDS, parse_map
from kanjia.reconcile._export import METRICS, Export, ExportError, Period
from kanjia.reconcile._load import FORMATS, load_export, parse_tz

__all__ = [
    "FORMATS",
    "MAP_FIELDS",
    "METRICS",
    "Convert",
    "Export",
    "ExportError",
    "Period",
    "Tolerance",
    "load_export",
    "parse_map",
    "parse_tolerance",
    "parse_tz",
    "reconcile",
]
