"""Ledger databases: SQLite (default) and PostgreSQL, one schema, ordered migrations."""

from kanjia.metering.store._db import Conflict, Database, Step
from kanjia.metering.store._migrations import MIGRATIONS, migrate
from kanjia.metering.store._open import open_database
from kanjia.metering.store._postgres import PostgresDatabase
from kanjia.metering.store._sqlite import SQLiteDatabase

__all__ = ["MIGRATIONS", "Conflict", "Database", "PostgresDatabase", "SQLiteDatabase", "Step",
           "migrate", "open_database"]
