"""The public surface: ``kanjia.metering.__all__`` names everything it exports, once."""

from __future__ import annotations

import kanjia.metering as metering


def test_all_is_complete() -> None:
    names = list(metering.__all__)
    assert len(names) == len(set(names))
    assert all(hasattr(metering, n) for n in names)
    public = {n for n in vars(metering) if not n.startswith("_")
              and getattr(getattr(metering, n), "__module__", "").startswith(metering.__name__)}
    assert public <= set(names), public - set(names)
