"""A ledger whose rows go through the writer process, and what reached its database:
shared by the writer and journal-range tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kanjia.ledger import Journal, Ledger
from kanjia.ledger._rows import TABLE
from kanjia.ledger._writer import ProcessWriter
from kanjia.ledger.store import Database


def writer_ledger(db: Database, db_url: str, tmp_path: Path, *,
                  journal: dict[str, float] | None = None, **kw: Any) -> Ledger:
    """A ledger journaling to ``tmp_path / "j"`` (``journal``: the Journal's settings)
    whose batches a ``ProcessWriter`` inserts into ``db_url``."""
    return Ledger(db, Journal(tmp_path / "j", **(journal or {})),
                  writer=ProcessWriter(db_url), **kw)


async def written_ids(db: Database) -> list[str]:
    """The request ids in the database's usage table, one per row."""
    return [r[0] for r in await db.fetch(f"SELECT request_id FROM {TABLE}")]
