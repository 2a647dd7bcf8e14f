"""Everything metering needs in one gateway process, built from two URLs."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from kanjia.ledger._journal import Journal
from kanjia.ledger._writer import ProcessWriter, RowWriter
from kanjia.ledger.ledger import Ledger
from kanjia.ledger.store import Database, migrate, open_database
from kanjia.metering._fx import Fx
from kanjia.metering._gate import Gatekeeper
from kanjia.metering._leases import LeasedLimiter
from kanjia.metering._pricing import Unpriced
from kanjia.metering.limits import Limiter, LocalLimiter

__all__ = ["HOLD_TTL_S", "Metering", "journal_dir"]

#: a reservation nobody settles (its process died) is released after this long
HOLD_TTL_S = 600.0


def journal_dir(database: str, env: Mapping[str, str]) -> Path | None:
    """Where the journal of ``database`` lives: ``$KANJIA_JOURNAL_DIR``, else beside a
    SQLite file (``<file>.kanjia-journal``), else ``$XDG_STATE_HOME/kanjia/journal/<hash>``.
    None for an in-memory database."""
    if env.get("KANJIA_JOURNAL_DIR"):
        return Path(env["KANJIA_JOURNAL_DIR"])
    if database.startswith(("postgresql://", "postgres://")):
        state = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        digest = hashlib.sha256(database.encode()).hexdigest()[:16]
        return Path(state) / "kanjia" / "journal" / digest
    path = database.removeprefix("sqlite:///")
    if path in ("", ":memory:"):
        return None
    return Path(path + ".kanjia-journal")


class Metering:
    def __init__(self, db: Database, ledger: Ledger, gate: Gatekeeper) -> None:
        self.db = db
        self.ledger = ledger
        self.gate = gate

    @classmethod
    def create(cls, database: str, fx: Fx, *, redis: str | None = None,
               journal: Path | None = None, require_keys: bool = False,
               master_key: str | None = None, env: Mapping[str, str] | None = None,
               writer: Literal["process", "thread"] = "thread",
               unpriced: Unpriced | None = None) -> Metering:
        """``$KANJIA_LEDGER_FLUSH_S`` sets how often queued rows are written (0.1 s).
        ``writer="process"``: ledger rows go to the database through a writer process
        (not for an in-memory database, which only this process can see)."""
        env = os.environ if env is None else env
        db = open_database(database)
        where = journal if journal is not None else journal_dir(database, env)
        flush_s = float(env.get("KANJIA_LEDGER_FLUSH_S") or 0.1)
        rows: RowWriter | None = None
        if writer == "process" and where is not None:  # no journal dir: in memory
            rows = ProcessWriter(database)
        ledger = Ledger(db, Journal(where) if where is not None else None, interval_s=flush_s,
                        writer=rows)
        # shared through Redis by leases: Redis once per many requests (_leases.py)
        limiter: Limiter = LeasedLimiter(redis, HOLD_TTL_S) if redis \
            else LocalLimiter(HOLD_TTL_S)
        gate = Gatekeeper(db, limiter, fx, require_keys=require_keys, master_key=master_key,
                          before_seed=ledger.flush, unpriced=unpriced)
        return cls(db, ledger, gate)

    async def start(self) -> None:
        await self.db.connect()
        await migrate(self.db)
        await self.ledger.start()
        await self.gate.start()

    async def close(self) -> None:
        try:
            await self.gate.close()
        finally:
            await self.ledger.close()
            await self.db.close()
