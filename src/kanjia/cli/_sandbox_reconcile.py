"""Closing the loop after a run against the sandbox (``kanjia demo``): the ledger
reconciled with the sandbox's own usage export of every vendor the run called.

The hook, inside the sandbox's ``with`` block once the gateway has stopped (its
ledger flushed)::

    click.echo(reconcile_with_sandbox(sandbox.url, ledger, records, fx.convert))

The ledger should hold only this run's traffic (today's other rows would differ)."""

from __future__ import annotations

import asyncio
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from kanjia.ledger.record import CallRecord

__all__ = ["reconcile_with_sandbox"]

_DAY = 86400


def _fetch(url: str, out: Path) -> Path:
    with urllib.request.urlopen(url, timeout=10) as resp:
        out.write_bytes(resp.read())
    return out


def reconcile_with_sandbox(sandbox_url: str, database: str, records: Iterable[CallRecord],
                           convert: Any) -> str:
    """One line: no differences, or how many and the first few. ``records``: the
    run's ledger records (which vendors to ask for which usage export)."""
    from kanjia.ledger.store import migrate, open_database
    from kanjia.reconcile import Tolerance, load_export, reconcile

    kinds: dict[str, set[str]] = {}
    for r in records:
        if r.vendor:
            kind = "embeddings" if r.endpoint == "embeddings" else "completions"
            kinds.setdefault(r.vendor, set()).add(kind)
    start = int(time.time()) // _DAY * _DAY - _DAY
    window = f"start_time={start}&end_time={start + 2 * _DAY}"
    with tempfile.TemporaryDirectory(prefix="kanjia-reconcile-") as tmp:
        files: dict[str, list[tuple[Path, str]]] = {}
        for vendor, called in sorted(kinds.items()):
            base = f"{sandbox_url}/{vendor}/organization"
            files[vendor] = [
                (_fetch(f"{base}/usage/{kind}?{window}&group_by=model",
                        Path(tmp, f"{vendor}-{kind}.json")), "openai-usage")
                for kind in sorted(called)]
            files[vendor].append((_fetch(f"{base}/costs?{window}&group_by=line_item",
                                         Path(tmp, f"{vendor}-costs.json")), "openai-costs"))

        async def main() -> list[dict[str, Any]]:
            db = open_database(database)
            await db.connect()
            try:
                await migrate(db)
                return [await reconcile(db, vendor, [load_export(p, f) for p, f in found],
                                        tolerance=Tolerance(cost=Decimal("0.000001")),
                                        convert=convert)
                        for vendor, found in files.items()]
            finally:
                await db.close()

        results = asyncio.run(main())
    lines = sum(r["compared"] for r in results)
    diffs = [(r["vendor"], d) for r in results for d in r["differences"]]
    if not diffs:
        return (f"reconciled against the sandbox's usage export: no differences "
                f"({len(results)} vendors, {lines} day/model lines)")
    shown = "; ".join(f"{v}/{d['model']} {d['day']} {d['field']}: ledger {d['ledger']}, "
                      f"sandbox {d['vendor']}" for v, d in diffs[:3])
    many = "s" if len(diffs) != 1 else ""
    return (f"reconciled against the sandbox's usage export: {len(diffs)} difference{many} "
            f"(`kanjia reconcile` lists them): {shown}")
