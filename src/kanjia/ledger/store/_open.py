"""Pick the database from its URL: ``postgresql://...`` or a SQLite path."""

from __future__ import annotations

from kanjia.ledger.store._db import Database
from kanjia.ledger.store._postgres import PostgresDatabase
from kanjia.ledger.store._sqlite import SQLiteDatabase

__all__ = ["open_database"]


def open_database(url: str) -> Database:
    """A database for ``url`` (not yet connected): ``postgresql://`` / ``postgres://``
    URLs use PostgreSQL; ``sqlite:///path``, a plain path or ``:memory:`` use SQLite."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url)
    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///"):] or ":memory:"
    return SQLiteDatabase(url)
