"""The one small interface both ledger databases implement.

SQL is written once with ``?`` placeholders and portable types (TEXT, BIGINT,
INTEGER, SMALLINT, DOUBLE PRECISION); the PostgreSQL driver rewrites the
placeholders. Each implementation owns its connections; callers never see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["Conflict", "Database", "Step"]

#: one statement of a transaction: (sql, arguments)
Step = tuple[str, Sequence[Any]]


class Conflict(Exception):
    """A unique constraint refused a row (the same name, hash or request id)."""


class Database(Protocol):
    dialect: str
    #: where it points, without any password
    display: str

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run one statement on its own; return the number of rows it changed."""
        ...

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def transaction(self, steps: Sequence[Step]) -> list[int]:
        """Run ``steps`` atomically; raise ``Conflict`` on a unique violation."""
        ...

    async def insert_ignore(self, table: str, columns: Sequence[tuple[str, str]],
                            key: str, rows: Sequence[Sequence[Any]]) -> int:
        """Insert many rows in one transaction, skipping rows whose ``key`` exists.
        ``columns`` are (name, PostgreSQL type) pairs. Returns rows inserted."""
        ...
