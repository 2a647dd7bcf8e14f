"""What the ledger says one vendor should bill, summed per time period and model:
the ledger side of ``kanjia reconcile``.

A row counts as billed by its vendor when the vendor answered it (status below 400)
or when it carries tokens anyway (a stream that broke after the vendor had
generated). Refused requests (429, 5xx, ...) carry none and are not billed.
Periods are half-open ``[start, end)`` unix-second ranges, disjoint and in order;
one grouped statement sums every period at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kanjia.metering.store import Database

__all__ = ["BILLED", "BilledSums", "billed_usage"]

#: the SQL condition of a row the vendor bills (a response-cache hit reached no vendor)
BILLED = "(cache_hit = 0 AND (status < 400 OR input_tokens + output_tokens > 0))"


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
    model, currency)."""
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
    where = ["vendor = ?", "model IS NOT NULL", "ts >= ?", "ts < ?", BILLED]
    args: list[object] = [vendor, int(periods[0][0]), int(periods[-1][1])]
    if deployment is not None:
        where.append("deployment = ?")
        args.append(deployment)
    table = "usage_records"
    if db.dialect == "sqlite" and await _mostly(db, int(periods[0][0]), int(periods[-1][1])):
        # SQLite would walk the ts index and fetch every row from it at random: for a
        # window holding most of the ledger a plain scan is 3-4 times faster
        table = "usage_records NOT INDEXED"
    sql = (f"SELECT {key} AS p, {scope} AS s, model, currency, COUNT(*), SUM(input_tokens), "
           "SUM(cached_tokens), SUM(cache_write_tokens), SUM(output_tokens), SUM(cost_nano), "
           f"SUM(usage_estimated) FROM {table} WHERE {' AND '.join(where)} "
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
    found = await db.fetch("SELECT MIN(ts), MAX(ts) FROM usage_records")
    if not found or found[0][0] is None:
        return False
    first, last = float(found[0][0]), float(found[0][1])
    return min(hi, last) - max(lo, first) > 0.2 * (last - first)
