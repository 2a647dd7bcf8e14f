"""Alibaba Cloud Model Studio (百炼) billing details, as JSON.

Each billing item, as Model Studio's billing-detail API documents it
(help.aliyun.com/zh/document_detail/3030919.html): ``summaryTime`` (unix seconds),
``modelCode`` (``qwen-plus``), ``payableAmount`` (the amount due, 8 decimals) and
``values`` (a JSON object, or a string holding one, of usage figures such as
``input_tokens`` and ``output_tokens``). The items are read wherever the response
keeps them: the first list of objects that have ``modelCode`` and ``summaryTime``
(the envelope around them is not in the documentation we could read). Amounts are
CNY unless ``--currency`` says otherwise; days are in ``--tz`` (default: the
vendor's, Beijing time).

Only the documented usage keys ``input_tokens`` and ``output_tokens`` are compared:
how Model Studio splits cached input in ``values`` is not documented there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from kanjia.reconcile._export import Export, ExportError, day_period

__all__ = ["looks_like_bailian", "parse_bailian"]

_KEYS = ("modelCode", "summaryTime")
_USAGE = {"input_tokens": "input_tokens", "output_tokens": "output_tokens"}


def _items(doc: Any, depth: int = 0) -> list[dict[str, Any]] | None:
    if depth > 6:
        return None
    if isinstance(doc, list):
        if doc and all(isinstance(x, dict) for x in doc) and all(k in doc[0] for k in _KEYS):
            return doc
        for x in doc[:50]:
            found = _items(x, depth + 1)
            if found is not None:
                return found
    elif isinstance(doc, dict):
        for value in doc.values():
            found = _items(value, depth + 1)
            if found is not None:
                return found
    return None


def looks_like_bailian(text: str) -> bool:
    return '"modelCode"' in text and '"summaryTime"' in text


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def parse_bailian(text: str, source: str, tz: tzinfo, tz_name: str,
                  currency: str | None = None) -> Export:
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ExportError(f"{source} is not JSON: expected Model Studio billing items "
                          "(objects with 'modelCode', 'summaryTime', 'payableAmount')") from None
    items = _items(doc)
    if items is None:
        raise ExportError(f"{source}: expected a list of Model Studio billing items (objects "
                          "with fields 'modelCode' and 'summaryTime')")
    export = Export("bailian", source, "all", (currency or "CNY").upper(), tz_name)
    cells: dict[date, dict[str, dict[str, Decimal]]] = {}
    for i, item in enumerate(items):
        at = f"{source}: item {i}"
        model, when = item.get("modelCode"), item.get("summaryTime")
        if not isinstance(model, str) or not model:
            raise ExportError(f"{at}: expected field 'modelCode'")
        if isinstance(when, bool) or not isinstance(when, int | float):
            raise ExportError(f"{at}: expected field 'summaryTime' (unix seconds)")
        amount = _decimal(item.get("payableAmount"))
        if amount is None:
            raise ExportError(f"{at}: expected field 'payableAmount' (a number)")
        values = item.get("values") or {}
        if isinstance(values, str):
            try:
                values = orjson.loads(values)
            except orjson.JSONDecodeError:
                raise ExportError(f"{at}: field 'values' is not a JSON object") from None
        if not isinstance(values, dict):
            raise ExportError(f"{at}: field 'values' is not a JSON object")
        day = datetime.fromtimestamp(float(when), UTC).astimezone(tz).date()
        cell = cells.setdefault(day, {}).setdefault(model, {})
        cell["cost"] = cell.get("cost", Decimal(0)) + amount
        for key, metric in _USAGE.items():
            number = _decimal(values.get(key)) if key in values else None
            if key in values and number is None:
                raise ExportError(f"{at}: field 'values.{key}' is not a number")
            if number is not None:
                cell[metric] = cell.get(metric, Decimal(0)) + number
    if cells:
        first, last = min(cells), max(cells)
        export.periods = [day_period(date.fromordinal(first.toordinal() + i), tz)
                          for i in range((last - first).days + 1)]
        for day, models in cells.items():
            for model, cell in models.items():
                for metric, value in cell.items():
                    export.add((day - first).days, model, metric, value)
    else:
        export.metrics.add("cost")
    return export
