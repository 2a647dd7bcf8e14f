"""Ledger databases: SQLite (default) and PostgreSQL, one schema, ordered migrations."""

from kanjia.ledger.store._db import Conflict, Database, Step
from kanjia.ledger.store._migrations import MIGRATIONS, migrate
from kanjia.ledger.store._open import open_database
from kanjia.ledger.store._postgres import PostgresDatabase
from kanjia.ledger.store._sqlite import SQLiteDatabase

__all__ = ["MIGRATIONS", "Conflict", "Database", "PostgresDatabase", "SQLiteDatabase", "Step",
           "migrate", "open_database"]
