"""Price the ledger's cells on other models: the engine behind savings and re-pricing.

A resolver says, for one cell (its source model, the start of its time slot and its
prompt-length bucket), which model and which rates price it, or that it keeps the
cost the ledger recorded. Token sums are added up per (report row, rates, day) as
integers and multiplied by the exact per-token ``Decimal`` rates once at the end, so
the result equals ``cost_of`` summed over the rows, and a million rows cost a few
thousand multiplications.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from kanjia.catalog import Catalog, FxTable, ModelEntry, Rates
from kanjia.ledger.query import NONE
from kanjia.reports._amounts import Amounts
from kanjia.reports._scan import Cell, bucket_prompt

__all__ = ["Keep", "Line", "Pick", "Replay", "Resolve", "clamp", "kind_of", "pick", "replay"]

_NANO = Decimal(10) ** 9
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True, eq=False)
class Pick:
    """Price a cell on ``target`` with ``rates`` (per token, in ``currency``)."""

    target: ModelEntry
    rates: Rates
    currency: str
    period_id: str
    #: the target had no price at the request's instant: its nearest price was used
    shifted: bool = False


@dataclass(frozen=True, slots=True)
class Keep:
    """Leave the cell at the ledger's cost (it cannot be compared), and why."""

    reason: str


#: (source "vendor/model", its catalog entry or None, the cell's instant (unix s), bucket)
Resolve = Callable[[str, ModelEntry | None, int, int], Pick | Keep]


def kind_of(model: ModelEntry) -> str:
    """"embeddings" for embedding models, else "chat"."""
    caps = model.capabilities
    return "embeddings" if "embeddings" in caps and "chat" not in caps else "chat"


def clamp(model: ModelEntry, at: datetime) -> tuple[datetime, bool] | None:
    """``at`` if ``model`` had a price then, else its nearest priced instant (and True);
    None if it never had one."""
    if model.price_at(at) is not None:
        return at, False
    best: datetime | None = None
    for p in model.periods:
        if p.start is not None and p.start > at:
            cand = p.start
        elif p.end is not None and p.end <= at:
            cand = p.end - _SECOND
        else:
            continue
        if model.price_at(cand) is not None and (
                best is None or abs(cand - at) < abs(best - at)):
            best = cand
    return None if best is None else (best, True)


def pick(model: ModelEntry, at: datetime, limits: Sequence[int], bucket: int) -> Pick | None:
    """The rates ``cost_of`` would use on ``model`` at ``at`` for prompts in ``bucket``
    (at the nearest priced instant if it had no price then)."""
    found = clamp(model, at)
    if found is None:
        return None
    when, shifted = found
    period = model.price_at(when)
    assert period is not None
    rates = period.rates_for(when, bucket_prompt(limits, bucket))
    pid = f"{period.id}+{rates.label}" if rates.label else period.id
    return Pick(model, rates, period.currency, pid, shifted)


@dataclass(slots=True)
class Line:
    """One report row: what the ledger recorded and what the replay priced."""

    label: str
    requests: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    actual: Amounts = field(default_factory=Amounts)
    replayed: Amounts = field(default_factory=Amounts)
    kept: int = 0               # requests left at the ledger's cost
    partial: bool = False       # some price used is unknown (the replayed amount is a floor)

    def add(self, other: Line) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.cached_tokens += other.cached_tokens
        self.output_tokens += other.output_tokens
        self.actual.add(other.actual)
        self.replayed.add(other.replayed)
        self.kept += other.kept
        self.partial = self.partial or other.partial


@dataclass(slots=True)
class Source:
    """What happened to one source model's requests."""

    requests: int = 0
    used: dict[str, int] = field(default_factory=dict)      # target key -> requests
    shifted: dict[str, int] = field(default_factory=dict)   # target key -> requests
    kept: dict[str, int] = field(default_factory=dict)      # reason -> requests


@dataclass(slots=True)
class Replay:
    lines: dict[str, Line]
    sources: dict[str, Source]
    #: re-priced amounts per (row label, billing currency), exact, before conversion
    exact: dict[tuple[str, str], Decimal]
    cells: int

    def total(self) -> Line:
        out = Line("TOTAL")
        for line in self.lines.values():
            out.add(line)
        return out


def _label(by: str, cell: Cell, src: str, day: date) -> str:
    if by == "model":
        return src
    if by == "vendor":
        return cell.vendor or NONE
    if by == "day":
        return day.isoformat()
    return NONE if cell.label[0] is None else str(cell.label[0])


def replay(cells: Sequence[Cell], catalog: Catalog, resolve: Resolve, *,
           by: str = "model", saved: bool = False) -> Replay:
    """Price every cell through ``resolve``; amounts in CNY and USD at each day's rate.

    ``saved`` (cells of a scan ``levers=True``): add what the response cache's hits
    recorded as saved to their line's replayed amount, converted on their day: a hit
    costs nothing and has no tokens to re-price, so that is what it would have cost."""
    entries: dict[tuple[str | None, str | None], ModelEntry | None] = {}
    days: dict[int, date] = {}
    picks: dict[tuple[str, int, int], Pick | Keep] = {}
    lines: dict[str, Line] = {}
    sources: dict[str, Source] = {}
    tokens: dict[tuple[str, int, date], list[int]] = {}
    ledger: dict[tuple[str, date], list[int]] = {}
    hits: dict[tuple[str, str, date], int] = {}
    order: list[Pick] = []
    index: dict[int, int] = {}
    for cell in cells:
        ident = (cell.vendor, cell.model)
        if ident not in entries:
            entries[ident] = (catalog.get(cell.vendor, cell.model)
                              if cell.vendor and cell.model else None)
        entry = entries[ident]
        src = f"{cell.vendor}/{cell.model}" if cell.vendor else NONE
        day = days.get(cell.start)
        if day is None:
            day = days[cell.start] = cell.day
        label = _label(by, cell, src, day)
        line = lines.get(label)
        if line is None:
            line = lines[label] = Line(label)
        line.requests += cell.requests
        line.input_tokens += cell.input_tokens
        line.cached_tokens += cell.cached
        line.output_tokens += cell.output
        cost = ledger.setdefault((label, day), [0, 0, 0, 0])
        cost[0] += cell.cost_cny_nano
        cost[1] += cell.cost_usd_nano
        if saved and cell.levers is not None and cell.levers.saved_nano:
            at = (label, cell.levers.currency, day)
            hits[at] = hits.get(at, 0) + cell.levers.saved_nano
        key = (src, cell.start, cell.bucket)
        how = picks.get(key)
        if how is None:
            how = picks[key] = resolve(src, entry, cell.start, cell.bucket)
        stat = sources.get(src)
        if stat is None:
            stat = sources[src] = Source()
        stat.requests += cell.requests
        if isinstance(how, Keep):
            cost[2] += cell.cost_cny_nano
            cost[3] += cell.cost_usd_nano
            line.kept += cell.requests
            stat.kept[how.reason] = stat.kept.get(how.reason, 0) + cell.requests
            continue
        target = how.target.key
        stat.used[target] = stat.used.get(target, 0) + cell.requests
        if how.shifted:
            stat.shifted[target] = stat.shifted.get(target, 0) + cell.requests
        if not how.rates.output_known and cell.output:
            line.partial = True
        i = index.get(id(how))
        if i is None:
            i = index[id(how)] = len(order)
            order.append(how)
        sums = tokens.setdefault((label, i, day), [0, 0, 0, 0, 0])
        sums[0] += cell.uncached
        sums[1] += cell.cached
        sums[2] += cell.cache_write
        sums[3] += cell.output
        sums[4] += cell.cache_write_1h
    fx = catalog.fx
    exact: dict[tuple[str, str], Decimal] = {}
    for (label, i, day), (u, c, w, o, h) in tokens.items():
        how = order[i]
        r = how.rates
        amount = r.input * u + r.cached * c + r.cache_write * w + r.output * o
        if h:  # 1-hour writes at their own price, as cost_of does
            hour = r.cache_write if r.cache_write_1h is None else r.cache_write_1h
            amount += (hour - r.cache_write) * h
        exact[(label, how.currency)] = exact.get((label, how.currency), Decimal(0)) + amount
        lines[label].replayed.add(Amounts.of(fx, amount, how.currency, day))
    for (label, day), (cny, usd, kept_cny, kept_usd) in ledger.items():
        line = lines[label]
        line.actual.add(_nano(fx, cny, usd, day))
        line.replayed.add(_nano(fx, kept_cny, kept_usd, day))
    for (label, cur, day), nano in hits.items():
        lines[label].replayed.add(Amounts.of(fx, Decimal(nano) / _NANO, cur, day))
    return Replay(lines, sources, exact, len(cells))


def _nano(fx: FxTable, cny: int, usd: int, day: date) -> Amounts:
    out = Amounts.of(fx, Decimal(cny) / _NANO, "CNY", day)
    out.add(Amounts.of(fx, Decimal(usd) / _NANO, "USD", day))
    return out


def utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
