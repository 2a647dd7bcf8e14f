"""OpenAI's organization usage and costs API pages (``GET /v1/organization/usage/
completions`` or ``/usage/embeddings`` with ``group_by=model``; ``GET
/v1/organization/costs`` with ``group_by=line_item``), as saved to a file: one page
object, a JSON array of pages, or one page per line.

Shapes (as in the official ``openai`` SDK's ``types/admin/organization``): a page
``{"object": "page", "data": [bucket], "has_more", "next_page"}``; a bucket
``{"object": "bucket", "start_time", "end_time", "results": [...]}``; a usage result
``{"object": "organization.usage.completions.result", "model", "num_model_requests",
"input_tokens", "input_cached_tokens", "input_cache_write_tokens", "output_tokens",
...}`` (``input_tokens`` includes the cached and cache-write ones, as kanjia's ledger
counts them; the optional fields are compared when the export has them); a costs result
``{"object": "organization.costs.result", "amount": {"value", "currency"},
"line_item"}`` where the line item is ``"<model>, input"``, ``"<model>, cached
input"``, ``"<model>, output"`` (possibly ``"<tier> | <model> <modality>, ..."``);
line items without a model (``"web search tool calls"``) are listed, not compared.

Buckets are UTC; the hourly and per-minute buckets of one UTC day are summed into
that day.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

import orjson

from kanjia.reconcile._export import Export, ExportError, Period, span_period

__all__ = ["COMPLETIONS", "COSTS", "EMBEDDINGS", "check_buckets", "json_pages", "line_model",
           "parse_costs", "parse_usage", "result_kind"]

COMPLETIONS = "organization.usage.completions.result"
EMBEDDINGS = "organization.usage.embeddings.result"
COSTS = "organization.costs.result"
_PAGE = "an OpenAI usage/costs page: a JSON object with field 'data' (a list of buckets)"


def json_pages(text: str, source: str) -> list[dict[str, Any]]:
    """The page objects of a file (one object, an array, or JSON lines)."""
    try:
        doc: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        try:
            doc = [orjson.loads(ln) for ln in lines] if len(lines) > 1 else None
        except orjson.JSONDecodeError:
            doc = None
        if doc is None:
            raise ExportError(f"{source} is not JSON: expected {_PAGE}") from None
    pages = doc if isinstance(doc, list) else [doc]
    for i, page in enumerate(pages):
        where = f"{source}" if len(pages) == 1 else f"{source}: page {i}"
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise ExportError(f"{where}: expected field 'data' (a list of buckets) of {_PAGE}")
    return pages


def check_buckets(pages: list[dict[str, Any]], source: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for p, page in enumerate(pages):
        for b, bucket in enumerate(page["data"]):
            where = f"{source}: data[{b}]" if len(pages) == 1 else f"{source}: page {p} data[{b}]"
            if not isinstance(bucket, dict):
                raise ExportError(f"{where}: expected a bucket object")
            for name in ("start_time", "end_time"):
                if not _is_int(bucket.get(name)):
                    raise ExportError(f"{where}: expected field '{name}' (unix seconds)")
            if bucket["end_time"] <= bucket["start_time"]:
                raise ExportError(f"{where}: 'end_time' must be after 'start_time'")
            if not isinstance(bucket.get("results"), list):
                raise ExportError(f"{where}: expected field 'results' (a list)")
            out.append((where, bucket))
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def result_kind(pages: list[dict[str, Any]]) -> str | None:
    """The ``object`` of the first result in the pages, if any."""
    for page in pages:
        for bucket in page["data"]:
            results = bucket.get("results") if isinstance(bucket, dict) else None
            for result in results or ():
                if isinstance(result, dict) and isinstance(result.get("object"), str):
                    return str(result["object"])
    return None


def _periods(buckets: list[tuple[str, dict[str, Any]]]) -> tuple[list[Period], list[int]]:
    """Periods (buckets of one UTC day summed into it) and each bucket's period."""
    spans: list[tuple[int, int]] = sorted({(b["start_time"], b["end_time"]) for _, b in buckets})
    if len(spans) < len(buckets):
        seen: set[int] = set()
        for where, b in buckets:
            if b["start_time"] in seen:
                raise ExportError(f"{where}: the same bucket twice (the same page passed "
                                  "twice?)")
            seen.add(b["start_time"])
    for (_, hi), (lo, _) in pairwise(spans):
        if lo < hi:
            raise ExportError(f"buckets overlap at {lo}: export one bucket_width at a time")
    merged: list[tuple[int, int]] = []
    for lo, hi in spans:
        same_day = lo // 86400 == (hi - 1) // 86400
        if merged and same_day and merged[-1][1] == lo and merged[-1][0] // 86400 == lo // 86400:
            merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    periods = [span_period(lo, hi) for lo, hi in merged]
    index = []
    for _, b in buckets:
        index.append(next(i for i, (lo, hi) in enumerate(merged)
                          if lo <= b["start_time"] and b["end_time"] <= hi))
    return periods, index


def _count(result: dict[str, Any], name: str, where: str, required: bool = True) -> int | None:
    value = result.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ExportError(f"{where}: expected field '{name}' (a count)")
    return value


def parse_usage(pages: list[dict[str, Any]], source: str) -> Export:
    kind = result_kind(pages) or COMPLETIONS
    if kind not in (COMPLETIONS, EMBEDDINGS):
        raise ExportError(f"{source}: expected results with 'object': '{COMPLETIONS}' (or "
                          f"'{EMBEDDINGS}'), found '{kind}'")
    buckets = check_buckets(pages, source)
    periods, index = _periods(buckets)
    export = Export("openai-usage", source, "embeddings" if kind == EMBEDDINGS else
                    "completions", None, "UTC", periods)
    export.metrics.update(("requests", "input_tokens") if kind == EMBEDDINGS
                          else ("requests", "input_tokens", "output_tokens"))
    for (where, bucket), period in zip(buckets, index, strict=True):
        for j, result in enumerate(bucket["results"]):
            at = f"{where}.results[{j}]"
            if not isinstance(result, dict) or result.get("object") != kind:
                raise ExportError(f"{at}: expected 'object': '{kind}'")
            model = result.get("model")
            if not isinstance(model, str) or not model:
                raise ExportError(f"{at}: expected field 'model' (export with group_by=model)")
            export.add(period, model, "requests",
                       Decimal(_count(result, "num_model_requests", at) or 0))
            export.add(period, model, "input_tokens",
                       Decimal(_count(result, "input_tokens", at) or 0))
            if kind == COMPLETIONS:
                export.add(period, model, "output_tokens",
                           Decimal(_count(result, "output_tokens", at) or 0))
                for field, metric in (("input_cached_tokens", "cached_tokens"),
                                      ("input_cache_write_tokens", "cache_write_tokens")):
                    value = _count(result, field, at, required=False)
                    if value is not None:
                        export.add(period, model, metric, Decimal(value))
    return export


def line_model(line_item: str) -> str | None:
    """The model a costs line item is about, or None (e.g. "web search tool calls")."""
    head, comma, _ = line_item.partition(",")
    if not comma:
        return None
    head = head.rsplit(" | ", 1)[-1].strip()
    return head.split()[0] if head else None


def parse_costs(pages: list[dict[str, Any]], source: str) -> Export:
    kind = result_kind(pages) or COSTS
    if kind != COSTS:
        raise ExportError(f"{source}: expected results with 'object': '{COSTS}', found "
                          f"'{kind}'")
    buckets = check_buckets(pages, source)
    periods, index = _periods(buckets)
    export = Export("openai-costs", source, "all", None, "UTC", periods)
    export.metrics.add("cost")
    for (where, bucket), period in zip(buckets, index, strict=True):
        for j, result in enumerate(bucket["results"]):
            at = f"{where}.results[{j}]"
            if not isinstance(result, dict) or result.get("object") != COSTS:
                raise ExportError(f"{at}: expected 'object': '{COSTS}'")
            amount = result.get("amount")
            value = amount.get("value") if isinstance(amount, dict) else None
            currency = amount.get("currency") if isinstance(amount, dict) else None
            try:
                number = Decimal(str(value)) if isinstance(value, int | float | str) \
                    and not isinstance(value, bool) else None
            except InvalidOperation:
                number = None
            if number is None or not number.is_finite():
                raise ExportError(f"{at}: expected field 'amount.value' (a number)")
            if not isinstance(currency, str) or not currency:
                raise ExportError(f"{at}: expected field 'amount.currency'")
            if export.currency not in (None, currency.upper()):
                raise ExportError(f"{at}: amounts in both {export.currency} and "
                                  f"{currency.upper()}: export one currency at a time")
            export.currency = currency.upper()
            line = result.get("line_item")
            if not isinstance(line, str) or not line:
                raise ExportError(f"{at}: expected field 'line_item' (export with "
                                  "group_by=line_item, to compare cost per model)")
            model = line_model(line)
            if model is None:
                export.other.append({"day": periods[period].label, "line_item": line,
                                     "amount": float(number)})
                continue
            export.add(period, model, "cost", number)
    return export
