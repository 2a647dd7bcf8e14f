"""A bill or usage export as CSV, read through a column mapping.

``--map date=Date,model=Model,requests=Calls,input_tokens=Input,cached_tokens=Cached,
cache_write_tokens=Writes,output_tokens=Output,cost=Amount,currency=Currency`` names
the file's column for each figure; ``date`` and ``model`` are required, then any of
the figures (only those mapped are compared). Rows of the same day and model are
summed. A date may be ``2026-12-06``, ``2026/12/06``, ``2026年12月06日`` or
``20261206``, with or without a time (only the day counts, in the export's time
zone). Numbers may carry thousands separators and a currency sign. UTF-8 (with or
without BOM) and GB18030 (what Chinese consoles often export) are both read.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, tzinfo
from decimal import Decimal, InvalidOperation

from kanjia.reconcile._export import METRICS, Export, ExportError, day_period

__all__ = ["MAP_FIELDS", "decode", "parse_csv", "parse_map"]

MAP_FIELDS = ("date", "model", *METRICS, "currency")
_DATE = re.compile(r"^\s*(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})|^\s*(\d{4})(\d{2})(\d{2})\b")
_NOISE = re.compile(r"[,\s¥￥$元]")


def parse_map(text: str) -> dict[str, str]:
    """``field=Column,...`` -> {field: column}; ValueError naming a bad entry."""
    out: dict[str, str] = {}
    for item in (p for p in text.split(",") if p.strip()):
        name, eq, column = item.partition("=")
        name, column = name.strip(), column.strip()
        if not eq or not column:
            raise ValueError(f"--map entry {item.strip()!r} is not FIELD=COLUMN")
        if name not in MAP_FIELDS:
            raise ValueError(f"--map field {name!r} is not one of {', '.join(MAP_FIELDS)}")
        out[name] = column
    missing = [f for f in ("date", "model") if f not in out]
    if missing:
        raise ValueError(f"--map needs {' and '.join(missing)}=COLUMN")
    if not any(m in out for m in METRICS):
        raise ValueError(f"--map needs at least one of {', '.join(METRICS)}")
    return out


def decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace")


def _day(value: str) -> date | None:
    m = _DATE.match(value)
    if m is None:
        return None
    y, mo, d = (int(g) for g in (m.group(1, 2, 3) if m.group(1) else m.group(4, 5, 6)))
    try:
        return date(y, mo, d)
    except ValueError:
        return None


def _number(value: str) -> Decimal | None:
    text = _NOISE.sub("", value)
    if text in ("", "-", "--"):
        return Decimal(0)
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def parse_csv(text: str, source: str, mapping: dict[str, str], tz: tzinfo, tz_name: str,
              currency: str | None = None) -> Export:
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, ",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise ExportError(f"{source}: expected a CSV header row with column "
                          f"{mapping['date']!r}, found an empty file")
    names = [h.strip().lstrip("\ufeff") for h in header]
    where: dict[str, int] = {}
    for field, column in mapping.items():
        idx = names.index(column) if column in names else next(
            (i for i, n in enumerate(names) if n.lower() == column.lower()), -1)
        if idx < 0:
            shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            raise ExportError(f"{source}: expected column {column!r} (--map {field}="
                              f"{column}); the header has: {shown}")
        where[field] = idx
    metrics = [m for m in METRICS if m in where]
    days: dict[date, dict[str, dict[str, Decimal]]] = {}
    currencies: set[str] = set()
    for line, row in enumerate(reader, start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) <= max(where.values()):
            raise ExportError(f"{source}: line {line}: expected {len(names)} columns, found "
                              f"{len(row)}")
        day = _day(row[where["date"]])
        if day is None:
            raise ExportError(f"{source}: line {line}: column {mapping['date']!r} is not a "
                              f"date: {row[where['date']].strip()[:40]!r}")
        model = row[where["model"]].strip()
        if not model:
            raise ExportError(f"{source}: line {line}: column {mapping['model']!r} is empty")
        cell = days.setdefault(day, {}).setdefault(model, {})
        for metric in metrics:
            number = _number(row[where[metric]])
            if number is None:
                raise ExportError(f"{source}: line {line}: column {mapping[metric]!r} is not "
                                  f"a number: {row[where[metric]].strip()[:40]!r}")
            cell[metric] = cell.get(metric, Decimal(0)) + number
        if "currency" in where and "cost" in where and row[where["currency"]].strip():
            currencies.add(row[where["currency"]].strip().upper())
    if len(currencies) > 1:
        raise ExportError(f"{source}: column {mapping['currency']!r} has several currencies "
                          f"({', '.join(sorted(currencies))}): export one at a time")
    if currencies:
        currency = currencies.pop()
    export = Export("csv", source, "all", currency.upper() if currency else None, tz_name)
    export.metrics.update(metrics)
    if days:
        first, last = min(days), max(days)
        span = (last - first).days + 1
        export.periods = [day_period(date.fromordinal(first.toordinal() + i), tz)
                          for i in range(span)]
        for day, models in days.items():
            for model, cell in models.items():
                for metric, value in cell.items():
                    export.add((day - first).days, model, metric, value)
    return export
