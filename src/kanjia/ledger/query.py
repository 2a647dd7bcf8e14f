"""Every read of the ledger tables: the one place SQL selects from ``usage_records``.

Reports, the dashboard, ``kanjia usage``, reconciliation, the budget seeding and the
request lookup call these functions; rows are written only by the ledger's writer.
Time windows are UTC days, ``since`` inclusive and ``until`` exclusive.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from kanjia.ledger._rows import KEY, NAMES, TABLE
from kanjia.ledger.store import Database

__all__ = ["BATCH", "BILLED", "DIRECT", "GROUPS", "HIT", "LEVER", "LEVER_FLAGS", "LEVER_KEYS",
           "NONE", "BilledSums", "SpendSums",
           "billed_usage", "budget_charges", "cell_sums", "charges_by_subject",
           "check_by", "incidents", "key_names", "label_of", "latency_medians",
           "record_rows", "route_outcomes", "spend_sums", "traffic_sums", "ts_bounds",
           "ts_span", "vendor_known", "where"]

#: how a request chose its model: through a route ("routing") or named by the client
#: ("direct"); or it was answered from kanjia's response cache ("response_cache")
LEVER = ("(CASE WHEN cache_hit = 1 THEN 'response_cache' "
         "WHEN route IS NULL THEN 'direct' ELSE 'routing' END)")

#: --by value -> the ledger columns (or expressions) that name a row ("day" comes from
#: the time; "api": the client API a request came in on, the ``endpoint`` column: chat,
#: messages, responses, embeddings, batch)
GROUPS: dict[str, tuple[str, ...]] = {
    "vendor": ("vendor",), "model": ("vendor", "model"), "route": ("route",),
    "key": ("key_id",), "tenant": ("tenant",), "day": ("day",), "lever": (LEVER,),
    "api": ("endpoint",),
}

NONE = "(none)"

#: the SQL condition of a row the vendor bills (a response-cache hit reached no vendor)
BILLED = "(cache_hit = 0 AND (status < 400 OR input_tokens + output_tokens > 0))"


# -- windows and groups ---------------------------------------------------------------------
def check_by(by: str) -> tuple[str, ...]:
    if by not in GROUPS:
        raise ValueError(f"by must be one of {', '.join(GROUPS)}, not {by!r}")
    return GROUPS[by]


def ts_bounds(since: date | None, until: date | None) -> tuple[float | None, float | None]:
    """Unix times of ``since`` 00:00 UTC and ``until`` 00:00 UTC (exclusive)."""
    if since is not None and until is not None and until <= since:
        raise ValueError(f"until ({until}) must be after since ({since})")
    return _ts(since), _ts(until)


def _ts(d: date | None) -> float | None:
    return None if d is None else datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()


def where(since: date | None, until: date | None, *, check: bool = True
          ) -> tuple[str, list[Any]]:
    """A WHERE clause (with ``?`` placeholders) for the window, and its arguments;
    ``check``: refuse an ``until`` not after ``since`` (else the window is empty)."""
    lo, hi = ts_bounds(since, until) if check else (_ts(since), _ts(until))
    parts, args = ["1 = 1"], []
    if lo is not None:
        parts.append("ts >= ?")
        args.append(lo)
    if hi is not None:
        parts.append("ts < ?")
        args.append(hi)
    return " AND ".join(parts), args


def label_of(by: str, values: Sequence[Any]) -> str:
    """The row name: "vendor/model" for models, else the column's value."""
    if by == "model":
        return f"{values[0]}/{values[1]}" if values[0] else NONE
    return str(values[0]) if values[0] is not None else NONE


def _group_by(*cols: str) -> str:
    return ", ".join(dict.fromkeys(cols))


# -- spend ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SpendSums:
    """The ledger rows of one group, billing currency, charge currency and day, summed."""

    group: tuple[Any, ...]          # the values of the grouping columns
    currency: str                   # of cost_nano
    charge_currency: str            # of charge_nano
    day: date
    requests: int
    errors: int                     # status >= 400
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int
    estimated: int                  # rows whose usage kanjia estimated
    cost_nano: int
    charge_nano: int
    cache_write_tokens: int
    latency_ms: float               # the sum


async def spend_sums(db: Database, cols: Sequence[str], since: date | None = None,
                     until: date | None = None, *, check: bool = True) -> list[SpendSums]:
    """Spend, tokens, errors and latency per (``cols``, currency, charge currency, day):
    the one spend aggregation behind ``kanjia usage`` and ``kanjia report spend``."""
    clause, args = where(since, until, check=check)
    sql = (f"SELECT {', '.join(cols)}, currency, charge_currency, day, COUNT(*), "
           "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(input_tokens), "
           "SUM(cached_tokens), SUM(output_tokens), SUM(reasoning_tokens), "
           "SUM(usage_estimated), SUM(cost_nano), SUM(charge_nano), SUM(cache_write_tokens), "
           f"SUM(latency_ms) FROM {TABLE} WHERE {clause} "
           f"GROUP BY {_group_by(*cols, 'currency', 'charge_currency', 'day')}")
    n = len(cols)
    out: list[SpendSums] = []
    for r in await db.fetch(sql, args):
        count, errors, inp, cached, outp, reasoning, est, cost, charge, write = (
            int(v or 0) for v in r[n + 3:n + 13])
        out.append(SpendSums(tuple(r[:n]), r[n], r[n + 1], date.fromisoformat(r[n + 2]),
                             count, errors, inp, cached, outp, reasoning, est, cost, charge,
                             write, float(r[n + 13] or 0.0)))
    return out


async def latency_medians(db: Database, cols: Sequence[str], since: date | None = None,
                          until: date | None = None) -> list[tuple[tuple[Any, ...], float]]:
    """The median latency per group of ``cols`` (the mean of the two middle values when
    even); with no ``cols``, of every request (one row, none if the window is empty)."""
    clause, args = where(since, until)
    if not cols:
        sql = ("SELECT AVG(latency_ms) FROM (SELECT latency_ms, ROW_NUMBER() OVER "
               f"(ORDER BY latency_ms) AS rn, COUNT(*) OVER () AS n FROM {TABLE} "
               f"WHERE {clause}) t WHERE rn IN ((n + 1) / 2, (n + 2) / 2)")
        found = await db.fetch(sql, args)
        return [((), float(found[0][0]))] if found and found[0][0] is not None else []
    part = ", ".join(cols)
    named = ", ".join(f"{e} AS g{i}" for i, e in enumerate(cols))
    names = ", ".join(f"g{i}" for i in range(len(cols)))
    sql = (f"SELECT {names}, AVG(latency_ms) FROM (SELECT {named}, latency_ms, "
           f"ROW_NUMBER() OVER (PARTITION BY {part} ORDER BY latency_ms) AS rn, "
           f"COUNT(*) OVER (PARTITION BY {part}) AS n FROM {TABLE} WHERE {clause}) t "
           f"WHERE rn IN ((n + 1) / 2, (n + 2) / 2) GROUP BY {names}")
    n = len(cols)
    return [(tuple(r[:n]), float(r[n])) for r in await db.fetch(sql, args)]


async def key_names(db: Database) -> dict[str, str]:
    """Key id → key name, to label spend by key."""
    return {str(k): v for k, v in await db.fetch("SELECT id, name FROM api_keys")}


async def traffic_sums(db: Database, since: date | None, until: date | None, *,
                       vendor: str | None = None, models: Sequence[str] = ()
                       ) -> tuple[Any, ...] | None:
    """(first day, last day, requests, input, cached, output tokens) of the window, of
    ``vendor``'s ``models`` when given."""
    clause, args = where(since, until)
    sql = ("SELECT MIN(day), MAX(day), COUNT(*), SUM(input_tokens), SUM(cached_tokens), "
           f"SUM(output_tokens) FROM {TABLE} WHERE {clause}")
    if vendor is not None:
        sql += f" AND vendor = ? AND model IN ({', '.join('?' * len(models))})"
        args = [*args, vendor, *models]
    found = await db.fetch(sql, args)
    return found[0] if found else None


# -- budgets --------------------------------------------------------------------------------
async def budget_charges(db: Database, col: str, subject: str, start: float
                         ) -> list[tuple[Any, ...]]:
    """(charge currency, day, charge nano) of one key (``col`` "key_id") or tenant
    ("tenant") since unix time ``start``."""
    return await db.fetch(f"SELECT charge_currency, day, SUM(charge_nano) FROM {TABLE} "
                          f"WHERE ts >= ? AND {col} = ? GROUP BY charge_currency, day",
                          (start, subject))


async def charges_by_subject(db: Database, col: str, bucket: str, start: float,
                             subjects: Sequence[str]) -> list[tuple[Any, ...]]:
    """(subject, charge currency, ``bucket``, charge nano) of many keys or tenants."""
    sql = (f"SELECT {col}, charge_currency, {bucket}, SUM(charge_nano) "
           f"FROM {TABLE} WHERE ts >= ? AND {col} IN "
           f"({', '.join('?' * len(subjects))}) GROUP BY {col}, charge_currency, {bucket}")
    return await db.fetch(sql, (start, *subjects))


# -- single requests and the dashboard ------------------------------------------------------
async def record_rows(db: Database, request_id: str, *, calls: bool = False
                      ) -> list[tuple[Any, ...]]:
    """The row of ``request_id``; with ``calls``, the rows of its further calls
    (``<request id>.<n>``) instead."""
    if not calls:
        return await db.fetch(f"SELECT {', '.join(NAMES)} FROM {TABLE} WHERE {KEY} = ?",
                              (request_id,))
    # a range on the primary key ('/' follows '.'): an index scan, unlike LIKE
    return await db.fetch(f"SELECT {', '.join(NAMES)} FROM {TABLE} "
                          f"WHERE {KEY} > ? AND {KEY} < ?",
                          (request_id + ".", request_id + "/"))


async def route_outcomes(db: Database, clause: str, args: Sequence[Any]
                         ) -> list[tuple[Any, ...]]:
    """(route, vendor, model, status, error class, attempts, requests, latency sum)."""
    return await db.fetch(
        "SELECT route, vendor, model, status, error_class, attempts, COUNT(*), "
        f"SUM(latency_ms) FROM {TABLE} WHERE {clause} "
        "GROUP BY route, vendor, model, status, error_class, attempts", args)


async def incidents(db: Database, clause: str, args: Sequence[Any], limit: int
                    ) -> list[tuple[Any, ...]]:
    """The latest rows that failed or tried more than one model, newest first."""
    return await db.fetch(
        "SELECT ts, route, requested_model, vendor, model, status, error_class, attempts, "
        f"endpoint FROM {TABLE} WHERE {clause} AND (status >= 400 OR attempts LIKE ?) "
        "ORDER BY ts DESC LIMIT ?", (*args, "%,%", limit))


async def vendor_known(db: Database, vendor: str) -> bool:
    return bool(await db.fetch(f"SELECT 1 FROM {TABLE} WHERE vendor = ? LIMIT 1", [vendor]))


# -- re-pricing: cells ----------------------------------------------------------------------
async def ts_span(db: Database, clause: str = "1 = 1", args: Sequence[Any] = ()
                  ) -> tuple[float, float] | None:
    """The first and last ``ts`` of the rows matching ``clause``; None if none."""
    found = await db.fetch(f"SELECT MIN(ts), MAX(ts) FROM {TABLE} WHERE {clause}", args)
    if not found or found[0][0] is None:
        return None
    return float(found[0][0]), float(found[0][1])


_LEFT = "input_tokens - cached_tokens - cache_write_tokens"
#: per row, what a cell sums: (SQL, how two partial sums merge: "+" or "min")
_ROW = (("1", "+"), ("input_tokens", "+"),
        (f"CASE WHEN {_LEFT} > 0 THEN {_LEFT} ELSE 0 END", "+"), ("cached_tokens", "+"),
        ("cache_write_tokens", "+"), ("output_tokens", "+"),
        ("CASE WHEN currency = 'USD' THEN 0 ELSE cost_nano END", "+"),
        ("CASE WHEN currency = 'USD' THEN cost_nano ELSE 0 END", "+"),
        ("cache_write_1h_tokens", "+"))
#: what the savings split by lever keys a cell by, beyond the replay's key: the billing
#: currency and the price period the ledger recorded
LEVER_KEYS = ("currency", "price_period")
#: and, packed in one integer (cheaper to key by than three columns), its flags: a
#: response-cache hit, no route (the client named the model), the Batch API
HIT, DIRECT, BATCH = 4, 2, 1
LEVER_FLAGS = (f"(CASE WHEN cache_hit = 1 THEN {HIT} ELSE 0 END + CASE WHEN route IS NULL "
               f"THEN {DIRECT} ELSE 0 END + CASE WHEN endpoint = 'batch' THEN {BATCH} ELSE 0 END)")
#: and what it sums beyond the replay's sums: what the hits saved, the cell's first time
_LEVER_ROW = (("saved_nano", "+"), ("ts", "min"))
_NULL = b"\x00"   # stands for NULL in the SQLite aggregation table's key (a BLOB: no text is equal)


async def cell_sums(db: Database, key: str, extra: Sequence[str], clause: str,
                    args: Sequence[Any], *, levers: bool = False) -> list[tuple[Any, ...]]:
    """(key, vendor, model, *extra, requests, input, uncached input, cached, cache write,
    output, CNY cost nano, USD cost nano, 1h cache write) per group of the SQL ``key``;
    with ``levers``, grouped by ``LEVER_KEYS`` too (after ``extra``) and followed by the
    saved nano sum and the first ``ts``: one pass gives the replay and the lever split
    (the caller packs ``LEVER_FLAGS`` into ``key``).

    PostgreSQL hashes a GROUP BY. SQLite sorts every row for one, which for a million
    rows costs several times the scan, so there the sums are accumulated by an upsert
    into a small temporary table keyed by the group (one index probe per row).
    """
    names = ["vendor", "model", *extra, *(LEVER_KEYS if levers else ())]
    row = [*_ROW, *(_LEVER_ROW if levers else ())]
    if db.dialect != "sqlite":
        cols = "".join(f", {c}" for c in names)
        agg = ", ".join(f"MIN({expr})" if how == "min" else
                        "COUNT(*)" if expr == "1" else f"SUM({expr})" for expr, how in row)
        return await db.fetch(f"SELECT {key} AS k{cols}, {agg} FROM {TABLE} "
                              f"WHERE {clause} GROUP BY k{cols}", args)
    table = f"temp.kanjia_scan_{uuid.uuid4().hex[:12]}"
    sums = [f"s{i}" for i in range(len(row))]
    keys = ["k", *(f"g{i}" for i in range(len(names)))]
    await db.execute(f"CREATE TEMP TABLE {table.split('.', 1)[1]} ("
                     + ", ".join(f"{k} NOT NULL" for k in keys) + ", "
                     + ", ".join(f"{c} {'INTEGER ' if how == '+' else ''}NOT NULL"
                                 for c, (_, how) in zip(sums, row, strict=True))
                     + f", PRIMARY KEY ({', '.join(keys)})) WITHOUT ROWID")
    try:
        picked = ", ".join([key, *(f"IFNULL({c}, X'00')" for c in names),
                            *(expr for expr, _ in row)])
        update = ", ".join(f"{c} = {c} + excluded.{c}" if how == "+"
                           else f"{c} = min({c}, excluded.{c})"
                           for c, (_, how) in zip(sums, row, strict=True))
        await db.execute(f"INSERT INTO {table} SELECT {picked} FROM {TABLE} "
                         f"WHERE {clause} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {update}",
                         args)
        found = await db.fetch(f"SELECT * FROM {table}")
    finally:
        await db.execute(f"DROP TABLE {table}")
    return [tuple(None if v == _NULL else v for v in r) for r in found]


# -- reconciliation -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BilledSums:
    period: int                     # index into the periods asked for
    scope: str                      # "completions" (chat-like) | "embeddings"
    model: str
    currency: str                   # of cost_nano
    requests: int
    input_tokens: int               # every prompt token, cached and cache-write included
    cached_tokens: int
    cache_write_tokens: int
    output_tokens: int
    cost_nano: int
    estimated: int                  # rows whose usage kanjia estimated


async def billed_usage(db: Database, vendor: str, periods: Sequence[tuple[int, int]], *,
                       deployment: str | None = None) -> list[BilledSums]:
    """The billed ledger rows of ``vendor`` in ``periods``, summed per (period, scope,
    model, currency): what the vendor should bill (``kanjia reconcile``).

    A row counts as billed when the vendor answered it (status below 400) or when it
    carries tokens anyway (a stream that broke after the vendor had generated).
    Periods are half-open ``[start, end)`` unix-second ranges, disjoint and in order;
    one grouped statement sums every period at once."""
    if not periods:
        return []
    cases: list[str] = []
    last = None
    for i, (lo, hi) in enumerate(periods):
        if hi <= lo or (last is not None and lo < last):
            raise ValueError("periods must be non-empty, disjoint and in order")
        if last != lo:
            cases.append(f"WHEN ts < {int(lo)} THEN -1")
        cases.append(f"WHEN ts < {int(hi)} THEN {i}")
        last = hi
    key = f"(CASE {' '.join(cases)} ELSE -1 END)"
    scope = "(CASE WHEN endpoint = 'embeddings' THEN 'embeddings' ELSE 'completions' END)"
    conds = ["vendor = ?", "model IS NOT NULL", "ts >= ?", "ts < ?", BILLED]
    args: list[object] = [vendor, int(periods[0][0]), int(periods[-1][1])]
    if deployment is not None:
        conds.append("deployment = ?")
        args.append(deployment)
    table = TABLE
    if db.dialect == "sqlite" and await _mostly(db, int(periods[0][0]), int(periods[-1][1])):
        # SQLite would walk the ts index and fetch every row from it at random: for a
        # window holding most of the ledger a plain scan is 3-4 times faster
        table = f"{TABLE} NOT INDEXED"
    sql = (f"SELECT {key} AS p, {scope} AS s, model, currency, COUNT(*), SUM(input_tokens), "
           "SUM(cached_tokens), SUM(cache_write_tokens), SUM(output_tokens), SUM(cost_nano), "
           f"SUM(usage_estimated) FROM {table} WHERE {' AND '.join(conds)} "
           "GROUP BY p, s, model, currency")
    out: list[BilledSums] = []
    for r in await db.fetch(sql, args):
        if int(r[0]) < 0:
            continue
        nums = [int(v or 0) for v in r[4:]]
        out.append(BilledSums(int(r[0]), str(r[1]), str(r[2]), str(r[3]), *nums))
    return out


async def _mostly(db: Database, lo: int, hi: int) -> bool:
    """Whether [lo, hi) spans more than a fifth of the ledger's time range."""
    span = await ts_span(db)
    if span is None:
        return False
    first, last = span
    return min(hi, last) - max(lo, first) > 0.2 * (last - first)
