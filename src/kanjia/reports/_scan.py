"""The ledger as a few thousand cells instead of a million rows.

Re-pricing needs, per request, only its model, its instant and its token counts, and
prices are linear in tokens. So the ledger is summed in SQL per cell, a (model, epoch,
time-of-day slot, local weekday, prompt-length bucket), and each cell is priced once:

- epochs are cut at every instant where a relevant price period starts or ends and
  where the exchange rate changes (at UTC midnight of its dates), plus every UTC
  midnight when the report is by day;
- the time-of-day slot (a divisor of a day) is fine enough that no edge of an
  off-peak window (in its vendor's time zone) falls inside one; a weekday dimension is
  added only for windows that apply on weekdays or weekends only;
- buckets split prompts at every tier threshold (``above_input_tokens``), so one
  bucket has one tier.

So every request of a cell takes the same period, window, tier and exchange rate, and
the cell's cost is exactly the sum of ``kanjia.catalog.cost_of`` over its requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from math import gcd

from kanjia.catalog import Catalog, ModelEntry, PricePeriod
from kanjia.ledger.query import (
    BATCH,
    DIRECT,
    HIT,
    LEVER_FLAGS,
    LEVER_KEYS,
    cell_sums,
    check_by,
    ts_span,
    where,
)
from kanjia.ledger.store import Database

__all__ = ["DAY", "Cell", "Layout", "Levers", "bucket_prompt", "layout", "period_edges",
           "scan", "window_edges"]

DAY = 86_400
_THURSDAY = 3     # 1970-01-01, as date.weekday()


@dataclass(frozen=True, slots=True)
class Levers:
    """What the savings split by lever needs of a cell beyond the replay's sums (a scan
    ``levers=True`` keys cells by these too)."""

    currency: str                   # the billing currency of its rows (of cost and saved)
    price_period: str | None        # the price period (and window) the ledger recorded
    hit: bool                       # answered from kanjia's response cache
    direct: bool                    # the client named the model (no route)
    batch_endpoint: bool            # sent through the Batch API
    saved_nano: int                 # what its response-cache hits recorded as saved
    first_ts: float                 # its first request's time

    @property
    def lever(self) -> str:
        """Who gets the credit: ``query.LEVER`` of its rows."""
        return "response_cache" if self.hit else "direct" if self.direct else "routing"


@dataclass(frozen=True, slots=True)
class Cell:
    """Sums over the requests of one cell."""

    label: tuple[object, ...]       # the extra --by columns (route, key_id, tenant), if any
    vendor: str | None
    model: str | None
    start: int                      # an instant (unix s) priced exactly like every request
    bucket: int                     # prompts above the first ``bucket`` thresholds
    requests: int
    input_tokens: int
    uncached: int                   # sum of max(0, input - cached - cache_write) per request
    cached: int
    cache_write: int
    output: int
    cost_cny_nano: int              # what the ledger recorded, by billing currency
    cost_usd_nano: int
    cache_write_1h: int = 0         # of cache_write, the 1-hour writes (priced apart)
    levers: Levers | None = None    # with a scan ``levers=True``

    @property
    def day(self) -> date:
        return datetime.fromtimestamp(self.start, UTC).date()


def _overlaps(p: PricePeriod, lo: datetime | None, hi: datetime | None) -> bool:
    if hi is not None and p.start is not None and p.start >= hi:
        return False
    return not (lo is not None and p.end is not None and p.end <= lo)


def period_edges(model: ModelEntry, lo: datetime | None = None,
                 hi: datetime | None = None) -> set[int]:
    """Unix times in [lo, hi) at which one of ``model``'s price periods starts or ends."""
    out: set[int] = set()
    for p in model.periods:
        for edge in (p.start, p.end):
            if edge is not None and (lo is None or edge >= lo) and (hi is None or edge < hi):
                out.add(int(edge.timestamp()))
    return out


def window_edges(model: ModelEntry, lo: datetime | None = None,
                 hi: datetime | None = None) -> tuple[set[int], set[int]]:
    """Seconds after UTC midnight at which a time-of-day window of ``model`` (in a period
    overlapping [lo, hi)) opens or closes, and the UTC offsets (s) of its weekday-only
    windows."""
    edges: set[int] = set()
    weekly: set[int] = set()
    for p in model.periods:
        if not p.windows or not _overlaps(p, lo, hi):
            continue
        offset = p.tz.utcoffset(None)
        shift = int(offset.total_seconds()) if offset is not None else 0
        for w in p.windows:
            for start, end in w.minutes:
                edges.update(((start * 60 - shift) % DAY, (end * 60 - shift) % DAY))
            if len(w.weekdays) < 7:
                weekly.add(shift)
                edges.add(-shift % DAY)                      # local midnight
    return edges, weekly


def _resolution(edges: Iterable[int]) -> int:
    res = DAY
    for edge in edges:
        res = gcd(res, edge % DAY)
    return res


@dataclass(frozen=True, slots=True)
class Layout:
    """How a scan cuts the ledger into cells."""

    edges: tuple[int, ...]          # unix times (ascending) where a new epoch starts
    by_day: bool                    # every UTC day is its own epoch too
    res: int                        # time-of-day slot length (s); DAY: no slot
    weekly: tuple[int, ...]         # UTC offsets whose local weekday is a dimension
    limits: tuple[int, ...]         # prompt-length thresholds, ascending

    @property
    def slots(self) -> int:
        return DAY // self.res


def layout(models: Iterable[ModelEntry], catalog: Catalog, *, by: str,
           lo: datetime | None = None, hi: datetime | None = None,
           absolute: bool = True, tiers: Iterable[ModelEntry] = ()) -> Layout:
    """The cells that price ``models`` exactly. ``absolute``: requests are priced at
    their own time (period edges cut epochs); else at their time of day on the day
    [lo, hi) (edges there only matter as times of day). ``tiers``: models whose prompt
    tiers cut the buckets too (so one bucket has one tier on each of them)."""
    models = list(models)
    tod: set[int] = set()
    weekly: set[int] = set()
    cuts: set[int] = set()
    for m in models:
        edges, days = window_edges(m, lo, hi)
        tod |= edges
        if absolute:
            weekly |= days
            cuts |= period_edges(m)
        else:
            tod |= {e % DAY for e in period_edges(m, lo, hi)}
    by_day = by == "day"
    if not by_day:
        cuts |= {int(datetime.combine(r.date, datetime.min.time(), UTC).timestamp())
                 for r in catalog.fx.rates}
    limits = {t.above_input_tokens for m in (*models, *tiers) for p in m.periods
              if _overlaps(p, lo, hi) for t in p.tiers}
    return Layout(tuple(sorted(cuts)), by_day, _resolution(tod), tuple(sorted(weekly)),
                  tuple(sorted(limits)))


def bucket_prompt(limits: Sequence[int], bucket: int) -> int:
    """A prompt length inside ``bucket``: every prompt there takes the same tier."""
    return 0 if bucket == 0 else limits[bucket - 1] + 1


def _start(lay: Layout, lo: int, slot: int, weekdays: Sequence[int]) -> int:
    """The first instant at or after ``lo`` in time-of-day ``slot`` on ``weekdays``."""
    res = lay.res
    base = lo - lo % res
    t = lo if (base % DAY) // res == slot else base + (slot * res - base) % DAY
    for _ in range(7):
        if all(((t + off) // DAY + _THURSDAY) % 7 == wd
               for off, wd in zip(lay.weekly, weekdays, strict=True)):
            break
        t = t - t % res + DAY
    return t


async def scan(db: Database, lay: Layout, *, since: date | None, until: date | None,
               by: str = "model", levers: bool = False) -> list[Cell]:
    """The ledger rows in the window, summed per cell (one grouped SQL statement);
    ``levers``: cells split further by what the lever split needs (``Levers``)."""
    extra = [c for c in check_by(by) if c not in ("vendor", "model", "day")]
    clause, args = where(since, until)
    span = await ts_span(db, clause, args)
    if span is None:
        return []
    first, last = int(span[0]), int(span[1])
    edges = [e for e in lay.edges if first < e <= last]
    s = "CAST(ts AS INTEGER)" if db.dialect == "sqlite" else "CAST(FLOOR(ts) AS BIGINT)"
    key = ("(CASE " + " ".join(f"WHEN {s} < {e} THEN {i}" for i, e in enumerate(edges))
           + f" ELSE {len(edges)} END)") if edges else "0"
    sizes: list[tuple[str, int]] = []
    if lay.by_day:
        sizes.append((f"({s} / {DAY} - {first // DAY})", last // DAY - first // DAY + 1))
    if lay.res < DAY:
        sizes.append((f"(({s} % {DAY}) / {lay.res})", lay.slots))
    sizes += [(f"((({s} + {off}) / {DAY} + {_THURSDAY}) % 7)", 7) for off in lay.weekly]
    sizes.append((" + ".join(f"(CASE WHEN input_tokens > {int(t)} THEN 1 ELSE 0 END)"
                             for t in lay.limits) or "0", len(lay.limits) + 1))
    if levers:
        sizes.append((LEVER_FLAGS, 8))
    for expr, size in sizes:
        key = f"({key}) * {size} + {expr}"
    rows = await cell_sums(db, key, extra, clause, args, levers=levers)
    n = len(extra)
    floor = first - first % DAY
    days = last // DAY - first // DAY + 1
    starts: dict[int, int] = {}
    cells: list[Cell] = []
    nb = len(lay.limits) + 1
    for r in rows:
        k = int(r[0])
        flags = 0
        if levers:
            k, flags = divmod(k, 8)
        place = k // nb
        start = starts.get(place)
        if start is None:
            rest, weekdays = place, []
            for _ in lay.weekly:
                rest, wd = divmod(rest, 7)
                weekdays.append(wd)
            weekdays.reverse()
            slot = 0
            if lay.res < DAY:
                rest, slot = divmod(rest, lay.slots)
            lo = floor
            if lay.by_day:
                rest, d = divmod(rest, days)
                lo = (first // DAY + d) * DAY
            if rest > 0:
                lo = max(lo, edges[rest - 1])
            start = starts[place] = _start(lay, lo, slot, weekdays)
        at = 3 + n
        facts = None
        if levers:      # (*LEVER_KEYS, *sums, saved, first ts)
            cur, period = r[at:at + len(LEVER_KEYS)]
            at += len(LEVER_KEYS)
            facts = Levers(str(cur), None if period is None else str(period),
                           bool(flags & HIT), bool(flags & DIRECT), bool(flags & BATCH),
                           int(r[-2] or 0), float(r[-1]))
        requests, inp, uncached, cached, write, out, cny, usd, hour = (
            int(v or 0) for v in r[at:at + 9])
        cells.append(Cell(tuple(r[3:3 + n]), r[1], r[2], start, k % nb, requests, inp,
                          uncached, cached, write, out, cny, usd, hour, facts))
    return cells
