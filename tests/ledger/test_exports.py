"""The public surface: ``kanjia.ledger.__all__`` and ``kanjia.ledger.store.__all__`` each
name everything their package exports, once."""

from __future__ import annotations

import kanjia.ledger as ledger
import kanjia.ledger.store as store


def test_all_is_complete() -> None:
    for module in (ledger, store):
        names = list(module.__all__)
        assert len(names) == len(set(names))
        assert all(hasattr(module, n) for n in names)
        public = {n for n in vars(module) if not n.startswith("_")
                  and getattr(getattr(module, n), "__module__", "").startswith(module.__name__)}
        assert public <= set(names), public - set(names)
