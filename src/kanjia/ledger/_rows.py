"""A CallRecord as a ``usage_records`` row, and back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from kanjia.ledger._nano import from_nano, to_nano
from kanjia.ledger.record import CallRecord

__all__ = ["COLUMNS", "KEY", "NAMES", "TABLE", "DayClock", "row_from_json", "row_of", "row_to_json",
           "rows_from_json", "to_record", "utc_day"]

TABLE = "usage_records"
KEY = "request_id"
#: column name, PostgreSQL type (for bulk inserts), in row order
COLUMNS: tuple[tuple[str, str], ...] = (
    ("request_id", "text"), ("ts", "float8"), ("day", "text"), ("endpoint", "text"),
    ("route", "text"), ("requested_model", "text"), ("vendor", "text"), ("model", "text"),
    ("deployment", "text"), ("tenant", "text"), ("key_id", "text"),
    ("input_tokens", "int8"), ("cached_tokens", "int8"), ("cache_write_tokens", "int8"),
    ("output_tokens", "int8"), ("reasoning_tokens", "int8"), ("usage_estimated", "int2"),
    ("price_period", "text"), ("cost_nano", "int8"), ("currency", "text"),
    ("cost_reporting_nano", "int8"), ("reporting_currency", "text"), ("charge_nano", "int8"),
    ("charge_currency", "text"), ("latency_ms", "float8"), ("ttft_ms", "float8"),
    ("status", "int4"), ("error_class", "text"), ("stream", "int2"),
    ("client_disconnected", "int2"), ("attempts", "text"), ("cache_write_1h_tokens", "int8"),
    ("cache_hit", "int2"), ("saved_nano", "int8"),
)
NAMES = tuple(name for name, _ in COLUMNS)
#: journal lines written before the last columns existed (``cache_write_1h_tokens``,
#: then ``cache_hit`` and ``saved_nano``): their length -> the defaults that complete them
_LEGACY = {len(COLUMNS) - 3: (0, 0, 0), len(COLUMNS) - 2: (0, 0)}


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


class DayClock:
    """``utc_day`` for the hot path: recomputed only when the day changes."""

    def __init__(self) -> None:
        self._start = self._end = 0.0
        self._day = ""

    def day(self, ts: float) -> str:
        if not self._start <= ts < self._end:
            d = datetime.fromtimestamp(ts, UTC)
            self._start = datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
            self._end = self._start + 86400
            self._day = d.strftime("%Y-%m-%d")
        return self._day


def row_of(rec: CallRecord, day: str | None = None) -> tuple[Any, ...]:
    # (on the request path: an amount equal to the cost is not converted twice)
    cost = rec.cost
    cost_nano = to_nano(cost)
    reporting = rec.cost_reporting
    charge = cost if rec.charge is None else rec.charge
    saved = rec.saved
    ttft = rec.ttft_ms
    return (
        rec.request_id, float(rec.ts), day or utc_day(rec.ts), rec.endpoint, rec.route,
        rec.requested_model, rec.vendor, rec.model, rec.deployment, rec.tenant, rec.key_id,
        int(rec.input_tokens), int(rec.cached_tokens), int(rec.cache_write_tokens),
        int(rec.output_tokens), int(rec.reasoning_tokens), 1 if rec.usage_estimated else 0,
        rec.price_period, cost_nano, rec.currency,
        cost_nano if reporting == cost else to_nano(reporting), rec.reporting_currency,
        cost_nano if charge is cost or charge == cost else to_nano(charge),
        rec.charge_currency or rec.currency, float(rec.latency_ms),
        None if ttft is None else float(ttft), int(rec.status), rec.error_class,
        1 if rec.stream else 0, 1 if rec.client_disconnected else 0,
        orjson.dumps(rec.attempts).decode(), int(rec.cache_write_1h_tokens),
        1 if rec.cache_hit else 0, to_nano(saved) if saved else 0,
    )


def row_to_json(row: tuple[Any, ...]) -> bytes:
    """One journal line (a JSON array in column order, newline-terminated)."""
    return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)


def row_from_json(line: bytes) -> tuple[Any, ...] | None:
    """The row in a journal line, or None for a torn or foreign line."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, list):
        return None
    data.extend(_LEGACY.get(len(data), ()))
    if len(data) != len(COLUMNS):
        return None
    return tuple(data)


def rows_from_json(data: bytes) -> list[Sequence[Any]]:
    """The rows in newline-terminated journal lines (a torn or foreign line is skipped).

    One ``orjson.loads`` of the lines as one JSON array (a row's line never holds a raw
    newline), kept when it gives one full-width array per line; else (a torn, foreign
    or legacy line: a legacy row is completed) line by line with ``row_from_json``."""
    if data.endswith(b"\n"):
        try:
            rows = orjson.loads(b"[" + data[:-1].replace(b"\n", b",") + b"]")
        except orjson.JSONDecodeError:
            pass
        else:
            width = len(COLUMNS)
            if len(rows) == data.count(b"\n") and all(
                    type(row) is list and len(row) == width for row in rows):
                return rows  # type: ignore[no-any-return]
    return [row for row in map(row_from_json, data.splitlines()) if row is not None]


def to_record(row: tuple[Any, ...]) -> CallRecord:
    d = dict(zip(NAMES, row, strict=True))
    return CallRecord(
        request_id=d["request_id"], ts=d["ts"], endpoint=d["endpoint"], route=d["route"],
        requested_model=d["requested_model"], vendor=d["vendor"], model=d["model"],
        deployment=d["deployment"], tenant=d["tenant"], key_id=d["key_id"],
        input_tokens=d["input_tokens"], cached_tokens=d["cached_tokens"],
        cache_write_tokens=d["cache_write_tokens"], output_tokens=d["output_tokens"],
        reasoning_tokens=d["reasoning_tokens"], usage_estimated=bool(d["usage_estimated"]),
        price_period=d["price_period"], cost=from_nano(d["cost_nano"]),
        currency=d["currency"], cost_reporting=from_nano(d["cost_reporting_nano"]),
        reporting_currency=d["reporting_currency"],
        charge=from_nano(d["charge_nano"]) if d["charge_nano"] is not None else Decimal(0),
        charge_currency=d["charge_currency"], latency_ms=d["latency_ms"],
        ttft_ms=d["ttft_ms"], status=d["status"], error_class=d["error_class"],
        stream=bool(d["stream"]), client_disconnected=bool(d["client_disconnected"]),
        attempts=list(orjson.loads(d["attempts"])),
        cache_write_1h_tokens=int(d["cache_write_1h_tokens"] or 0),
        cache_hit=bool(d["cache_hit"]), saved=from_nano(d["saved_nano"] or 0),
    )
