"""The ledger: one row per call in ``usage_records``, written off the request path and
read in one place.

- ``CallRecord``: what a call cost and how it went.
- ``Ledger``: the gateway's record sink; journaled, batched, replayed after a crash.
- ``Journal``: the append-only file a record reaches before the database.
- ``kanjia.ledger.store``: SQLite or PostgreSQL behind one ``Database``, and the migrations.
- ``kanjia.ledger.query``: every read of the ledger tables.
- ``to_nano``/``from_nano``: amounts as exact integers (10⁻⁹ of a currency unit).
"""

from kanjia.ledger._journal import Journal
from kanjia.ledger._nano import NANO, from_nano, to_nano
from kanjia.ledger.ledger import Ledger
from kanjia.ledger.record import CallRecord

__all__ = [
    "NANO",
    "CallRecord",
    "Journal",
    "Ledger",
    "from_nano",
    "to_nano",
]
