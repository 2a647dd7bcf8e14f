"""The ledger schema, as ordered, named migrations recorded in ``kanjia_migrations``.

Each migration is a function returning portable DDL (the same text runs on SQLite
and PostgreSQL). ``migrate`` applies the missing ones in order, each in its own
transaction together with its row in ``kanjia_migrations``; two processes
migrating at once is safe (the loser's insert of the name conflicts, and it skips).
Never edit a released migration: add a new one.

Amounts are integers in nano-units (10⁻⁹ of the currency in the next column).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kanjia.ledger.store._db import Conflict, Database, Step

__all__ = ["MIGRATIONS", "migrate"]

Migration = Callable[[], list[str]]
MIGRATIONS: list[Migration] = []


def _migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@_migration
def m001_usage_records() -> list[str]:
    return ["""
CREATE TABLE usage_records (
    request_id          TEXT PRIMARY KEY,
    ts                  DOUBLE PRECISION NOT NULL,
    day                 TEXT NOT NULL,
    endpoint            TEXT NOT NULL,
    route               TEXT,
    requested_model     TEXT NOT NULL,
    vendor              TEXT,
    model               TEXT,
    deployment          TEXT,
    tenant              TEXT,
    key_id              TEXT,
    input_tokens        BIGINT NOT NULL DEFAULT 0,
    cached_tokens       BIGINT NOT NULL DEFAULT 0,
    cache_write_tokens  BIGINT NOT NULL DEFAULT 0,
    output_tokens       BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens    BIGINT NOT NULL DEFAULT 0,
    usage_estimated     SMALLINT NOT NULL DEFAULT 0,
    price_period        TEXT,
    cost_nano           BIGINT NOT NULL DEFAULT 0,
    currency            TEXT NOT NULL,
    cost_reporting_nano BIGINT NOT NULL DEFAULT 0,
    reporting_currency  TEXT NOT NULL,
    charge_nano         BIGINT NOT NULL DEFAULT 0,
    charge_currency     TEXT NOT NULL,
    latency_ms          DOUBLE PRECISION NOT NULL DEFAULT 0,
    ttft_ms             DOUBLE PRECISION,
    status              INTEGER NOT NULL,
    error_class         TEXT,
    stream              SMALLINT NOT NULL DEFAULT 0,
    client_disconnected SMALLINT NOT NULL DEFAULT 0,
    attempts            TEXT NOT NULL DEFAULT '[]'
)"""]


@_migration
def m002_usage_indexes() -> list[str]:
    # budgets re-read spend by (key, time) and (tenant, time); reports scan by time
    return ["CREATE INDEX usage_records_ts ON usage_records (ts)",
            "CREATE INDEX usage_records_key_ts ON usage_records (key_id, ts)",
            "CREATE INDEX usage_records_tenant_ts ON usage_records (tenant, ts)"]


@_migration
def m003_tenants_keys_budgets() -> list[str]:
    return ["""
CREATE TABLE tenants (
    name        TEXT PRIMARY KEY,
    markup      TEXT,
    price_list  TEXT,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL
)""", """
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    tenant      TEXT,
    key_hash    TEXT NOT NULL UNIQUE,
    hint        TEXT NOT NULL,
    models      TEXT,
    rpm         INTEGER,
    tpm         INTEGER,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    revoked_at  DOUBLE PRECISION
)""", """
CREATE TABLE budgets (
    id          TEXT PRIMARY KEY,
    scope       TEXT NOT NULL,
    subject     TEXT NOT NULL,
    period      TEXT NOT NULL,
    amount_nano BIGINT NOT NULL,
    currency    TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    deleted_at  DOUBLE PRECISION
)""",
            "CREATE INDEX api_keys_updated ON api_keys (updated_at)",
            "CREATE INDEX budgets_updated ON budgets (updated_at)",
            "CREATE INDEX tenants_updated ON tenants (updated_at)"]


@_migration
def m004_cache_write_1h() -> list[str]:
    # 1-hour cache writes (Anthropic ttl "1h"), a part of cache_write_tokens priced apart
    return ["ALTER TABLE usage_records "
            "ADD COLUMN cache_write_1h_tokens BIGINT NOT NULL DEFAULT 0"]


@_migration
def m005_response_cache() -> list[str]:
    # answers from kanjia's response cache (cost 0) and what each would have cost; keys
    # whose requests use the cache
    return ["ALTER TABLE usage_records ADD COLUMN cache_hit SMALLINT NOT NULL DEFAULT 0",
            "ALTER TABLE usage_records ADD COLUMN saved_nano BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE api_keys ADD COLUMN response_cache SMALLINT NOT NULL DEFAULT 0"]


_TABLE = ("CREATE TABLE IF NOT EXISTS kanjia_migrations ("
          "name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")


async def migrate(db: Database, upto: str | None = None) -> list[str]:
    """Apply every missing migration (or those up to and including ``upto``).
    Returns the names applied by this call."""
    for attempt in range(3):
        try:
            await db.execute(_TABLE)
            break
        except Conflict:  # PostgreSQL: another process created it at the same moment
            if attempt == 2:
                raise
    done = {name for (name,) in await db.fetch("SELECT name FROM kanjia_migrations")}
    applied: list[str] = []
    for fn in MIGRATIONS:
        name = fn.__name__
        if name not in done:
            steps: list[Step] = [("INSERT INTO kanjia_migrations (name, applied_at) "
                                  "VALUES (?, ?)", (name, time.time()))]
            steps.extend((sql, ()) for sql in fn())
            try:
                await db.transaction(steps)
                applied.append(name)
            except Conflict:
                pass  # another process applied it first
        if name == upto:
            break
    return applied
